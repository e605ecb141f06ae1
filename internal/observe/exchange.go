package observe

import (
	"context"
	"time"

	"bulwark/internal/exchange"
)

// Exchanger wraps an exchange.Exchanger and reports each exchange to
// Observer.
type Exchanger struct {
	Inner    exchange.Exchanger
	Observer Observer
}

// Exchange sends q through the wrapped exchanger and reports the outcome.
func (e *Exchanger) Exchange(ctx context.Context, q exchange.Query) (exchange.Response, error) {
	sent := time.Now()
	resp, err := e.Inner.Exchange(ctx, q)
	u := Upstream{Sent: sent, RTT: time.Since(sent), Server: q.Server, Zone: q.Zone, Query: resp.Query,
		Err: err, Spoofed: resp.Spoofed}
	if err == nil {
		u.RTT, u.TCP, u.Response = resp.RTT, resp.TCP, resp.Msg
	}
	e.Observer.UpstreamQuery(&u)
	return resp, err
}
