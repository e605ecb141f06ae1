package traffic

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"bulwark/internal/intel/events"
)

// nameAddrs is the answer history of one query name.
type nameAddrs struct {
	// addrs are the addresses seen, oldest first, at most MaxAddrs: the
	// oldest is dropped for a new one.
	addrs    []netip.Addr
	answers  int
	lastSeen time.Time
}

// uniqueTracker reports a name answering with an address never seen for
// it: a hijacked delegation or a poisoned or redirected answer shows as an
// established name that suddenly points elsewhere.
type uniqueTracker struct {
	cfg     UniqueConfig
	names   map[string]*nameAddrs
	dropped uint64
}

func newUniqueTracker(cfg UniqueConfig) *uniqueTracker {
	return &uniqueTracker{cfg: cfg, names: make(map[string]*nameAddrs)}
}

// observe records the addresses of ev for qname and returns a finding
// when the name was established and some address is new for it. Names
// whose table is full are counted as dropped.
func (u *uniqueTracker) observe(qname, domain string, ev *events.Event) (Finding, bool) {
	if ev.NAddrs == 0 {
		return Finding{}, false
	}
	n := u.names[qname]
	if n == nil {
		if len(u.names) >= u.cfg.MaxNames {
			u.dropped++
			return Finding{}, false
		}
		n = &nameAddrs{}
		u.names[qname] = n
	}
	var fresh []netip.Addr
	newNetwork := false
	for _, a := range ev.Addrs[:ev.NAddrs] {
		if slices.Contains(n.addrs, a) || slices.Contains(fresh, a) {
			continue
		}
		fresh = append(fresh, a)
		if !slices.ContainsFunc(n.addrs, func(old netip.Addr) bool { return network(old) == network(a) }) {
			newNetwork = true
		}
	}
	established := n.answers >= u.cfg.MinAnswers
	n.answers++
	n.lastSeen = ev.Time
	for _, a := range fresh {
		if len(n.addrs) >= u.cfg.MaxAddrs {
			n.addrs = slices.Delete(n.addrs, 0, 1)
		}
		n.addrs = append(n.addrs, a)
	}
	if !established || len(fresh) == 0 {
		return Finding{}, false
	}
	return u.finding(qname, domain, ev.Time, fresh, newNetwork, n.answers-1), true
}

func (u *uniqueTracker) finding(qname, domain string, at time.Time, fresh []netip.Addr, newNetwork bool, answers int) Finding {
	f := Finding{Time: at, Detector: DetectorUnique, Domain: domain, Name: qname}
	where := "in a network already seen for it"
	// A new address in a known network is how load balancers rotate; a
	// new network is how a redirected name looks.
	f.Score = 0.3
	if newNetwork {
		where = "in a network never seen for it"
		f.Score = verdictScore + 0.5*ramp(float64(answers), float64(u.cfg.MinAnswers), 10*float64(u.cfg.MinAnswers))
		f.Malicious = true
	}
	strs := make([]string, len(fresh))
	for i, a := range fresh {
		strs[i] = a.String()
	}
	f.Reason = fmt.Sprintf("unique-response score %.2f: %s answered %s, %s, after %d answers with other addresses",
		f.Score, qname, strings.Join(strs, ", "), where, answers)
	return f
}

// expire drops the names not seen since before, so that the table makes
// room for current ones.
func (u *uniqueTracker) expire(before time.Time) {
	for name, n := range u.names {
		if n.lastSeen.Before(before) {
			delete(u.names, name)
		}
	}
}
