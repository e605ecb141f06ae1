package traffic

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"bulwark/internal/intel/events"
)

// Synthetic clients of the tracker tests. The infected host joins
// dictionary words as matsnu and rovnix do, which the name model does not
// flag, so only the client tracker can find it.
const (
	infectedClient = 101
	typoClient     = 102
	natClient      = 103
	searchClient   = 104
	otherInfected  = 105
)

var dictionary = strings.Fields(`account again animal answer become before
	between country family follow garden govern happen history house
	include market mother number office people picture public question
	river school second silver simple station strong summer system table
	teacher travel window winter yellow morning`)

// wordDomain joins dictionary words to a label of at least 20 letters.
func wordDomain(rng *rand.Rand, suffix string) string {
	var b strings.Builder
	for b.Len() < 20 {
		b.WriteString(dictionary[rng.IntN(len(dictionary))])
	}
	return b.String() + "." + suffix
}

// popularNames are well-known registered domains of assorted lengths and
// suffixes, and typo makes a one-letter slip of one, as people type them.
var popularNames = strings.Fields(`google.com facebook.com youtube.com
	amazon.com wikipedia.org twitter.com instagram.com linkedin.com
	netflix.com microsoft.com apple.com github.com stackoverflow.com
	reddit.com bbc.co.uk spiegel.de lemonde.fr yahoo.co.jp baidu.com
	ebay.de booking.com paypal.com dropbox.com zoom.us office.com
	wordpress.org mozilla.org cloudflare.com nytimes.com theguardian.com
	imdb.com espn.com weather.com craigslist.org walmart.com bing.com
	duckduckgo.com spotify.com twitch.tv adobe.com`)

func typo(rng *rand.Rand, domain string) string {
	label, suffix, _ := strings.Cut(domain, ".")
	b := []byte(label)
	i := rng.IntN(len(b))
	switch rng.IntN(4) {
	case 0:
		b = append(b[:i:i], b[i+1:]...) // dropped letter
	case 1:
		b = append(b[:i+1:i+1], b[i:]...) // doubled letter
	case 2:
		if i+1 < len(b) {
			b[i], b[i+1] = b[i+1], b[i] // swapped letters
		}
	default:
		b[i] = byte('a' + rng.IntN(26)) // wrong key
	}
	return string(b) + "." + suffix
}

// clientEvent returns an answered A query of client for qname at at.
func clientEvent(client uint64, qname string, at time.Time, rcode uint8) *events.Event {
	ev := event(qname, at, rcode, 300)
	ev.Client = client
	if rcode == 0 {
		ev.AddAddr(netip.MustParseAddr("192.0.2.1"), 300)
	}
	return ev
}

// clientFindings returns the domains of the client tracker's findings.
func clientFindings(e *Engine) map[string]Finding {
	out := map[string]Finding{}
	for _, f := range byDetector(e, DetectorDGA) {
		if strings.HasPrefix(f.Reason, "DGA-like client") {
			out[f.Domain] = f
		}
	}
	return out
}

func TestDGAClientInfectedHost(t *testing.T) {
	clock := &fakeClock{t0}
	e := newTestEngine(t, testConfig(""), clock)
	rng := rand.New(rand.NewPCG(3, 4))
	var sent []string
	for i := range 12 {
		name := wordDomain(rng, "com")
		sent = append(sent, name)
		e.process(clientEvent(infectedClient, name, t0.Add(time.Duration(i)*5*time.Second), rcodeNXDomain))
		if i == 3 || i == 10 {
			// The host's user mistypes a name too.
			e.process(clientEvent(infectedClient, "gooogle.com", t0.Add(time.Duration(i)*5*time.Second), rcodeNXDomain))
		}
	}
	got := clientFindings(e)
	if _, ok := got["gooogle.com"]; ok {
		t.Errorf("the typo of the infected host's user was reported: %+v", got["gooogle.com"])
	}
	for _, name := range sent {
		if _, ok := got[name]; !ok {
			t.Errorf("no finding for %s of the infected client; findings %v", name, got)
		}
	}
	if len(got) != len(sent) {
		t.Errorf("%d findings, want %d", len(got), len(sent))
	}
	f := got[sent[len(sent)-1]]
	if !f.Malicious || f.Score < verdictScore || !strings.Contains(f.Reason, "13 unseen NXDOMAIN domains") {
		t.Errorf("finding = %+v, want malicious with the 13 domains in the reason", f)
	}

	// The command server: a word domain that resolves.
	c2 := wordDomain(rng, "com")
	e.process(clientEvent(infectedClient, "www."+c2, t0.Add(time.Minute), 0))
	f, ok := clientFindings(e)[c2]
	if !ok || !strings.Contains(f.Reason, "this name resolved") || f.Score < 0.95 {
		t.Errorf("command server %s: finding %+v, want one that says it resolved, score at least 0.95", c2, f)
	}
}

func TestDGAClientBenignNoise(t *testing.T) {
	clock := &fakeClock{t0}
	e := newTestEngine(t, testConfig(""), clock)
	rng := rand.New(rand.NewPCG(5, 6))
	at := t0
	step := func() time.Time { at = at.Add(time.Second); return at }

	// A typo-prone user: popular names, and now and then a slip.
	for i, name := range popularNames {
		e.process(clientEvent(typoClient, name, step(), 0))
		if i%10 == 0 {
			e.process(clientEvent(typoClient, typo(rng, name), step(), rcodeNXDomain))
		}
	}
	// A NAT of many users: 300 queries, one in five a typo, all within
	// the window.
	for range 300 {
		name := popularNames[rng.IntN(len(popularNames))]
		if rng.IntN(5) == 0 {
			e.process(clientEvent(natClient, typo(rng, name), step(), rcodeNXDomain))
			continue
		}
		e.process(clientEvent(natClient, name, step(), 0))
	}
	// A host with a search list: unqualified and mistyped names get the
	// search domain appended, and answer NXDOMAIN.
	for i := range 40 {
		name := fmt.Sprintf("host%d.corp.example", i)
		if i%2 == 1 {
			name = popularNames[i] + ".corp.example"
		}
		e.process(clientEvent(searchClient, name, step(), rcodeNXDomain))
	}
	// A mail server's PTR lookups of unknown addresses.
	for i := range 40 {
		e.process(clientEvent(searchClient, fmt.Sprintf("%d.%d.113.203.in-addr.arpa", i, 100+i), step(), rcodeNXDomain))
	}

	if got := clientFindings(e); len(got) != 0 {
		t.Errorf("benign clients gave %d client findings, want none: %v", len(got), got)
	}
	c := e.clients.lookup(natClient)
	if c != nil {
		cl := measureCluster(c, 0, time.Hour, 8)
		t.Logf("NAT cluster: %d domains, mean score %.2f, length spread %.2f, mean length %.1f", cl.n, cl.meanScore, cl.lenCV, cl.meanLen)
	}
	if c == nil || measureCluster(c, 0, time.Hour, 8).n < 8 {
		t.Errorf("the NAT client has no cluster of at least 8 typos, so the test proves nothing")
	}
}

func TestDGAClientSkipsSeenAndPopular(t *testing.T) {
	clock := &fakeClock{t0}
	e := newTestEngine(t, testConfig(""), clock)
	rng := rand.New(rand.NewPCG(7, 8))
	seenBefore := wordDomain(rng, "com")
	popular := wordDomain(rng, "com")
	for d := 1; d <= 15; d++ {
		e.pop.Add(popular, 100, t0.Add(-time.Duration(d)*24*time.Hour))
	}
	e.process(clientEvent(typoClient, seenBefore, t0, 0))

	// The seen domain now answers NXDOMAIN to the infected client: it
	// must not join the cluster.
	e.process(clientEvent(infectedClient, seenBefore, t0.Add(time.Second), rcodeNXDomain))
	for i := range 10 {
		e.process(clientEvent(infectedClient, wordDomain(rng, "com"), t0.Add(time.Duration(2+i)*time.Second), rcodeNXDomain))
	}
	got := clientFindings(e)
	if len(got) != 10 {
		t.Fatalf("%d client findings, want 10 for the unseen domains", len(got))
	}
	if _, ok := got[seenBefore]; ok {
		t.Errorf("domain %s that resolved before was reported", seenBefore)
	}

	e.process(clientEvent(infectedClient, popular, t0.Add(time.Minute), 0))
	e.process(clientEvent(infectedClient, seenBefore, t0.Add(time.Minute), 0))
	e.process(clientEvent(infectedClient, "short.de", t0.Add(time.Minute), 0))
	got = clientFindings(e)
	for _, d := range []string{popular, seenBefore, "short.de"} {
		if f, ok := got[d]; ok {
			t.Errorf("resolved domain %s reported: %+v", d, f)
		}
	}
}

func TestDGAClientMatchesOtherClientsCluster(t *testing.T) {
	clock := &fakeClock{t0}
	e := newTestEngine(t, testConfig(""), clock)
	rng := rand.New(rand.NewPCG(9, 10))
	for i := range 8 {
		at := t0.Add(time.Duration(i) * time.Second)
		e.process(clientEvent(infectedClient, wordDomain(rng, "com"), at, rcodeNXDomain))
		// The other host runs a family of 16 random letters under .net.
		e.process(clientEvent(otherInfected, randomLetters(rng, 16)+".net", at, rcodeNXDomain))
	}
	if n := len(clientFindings(e)); n != 16 {
		t.Fatalf("%d client findings, want 16 of the two clusters", n)
	}
	c2 := wordDomain(rng, "com")
	e.process(clientEvent(otherInfected, c2, t0.Add(time.Minute), 0))
	if f, ok := clientFindings(e)[c2]; !ok || !strings.Contains(f.Reason, "under .com") {
		t.Errorf("word domain resolved by the other DGA-like client: finding %+v, want one with the .com cluster", f)
	}
	// Past the hold the clients are no longer DGA-like.
	late := wordDomain(rng, "com")
	e.process(clientEvent(infectedClient, late, t0.Add(2*time.Hour), 0))
	if _, ok := clientFindings(e)[late]; ok {
		t.Errorf("domain %s resolved after the hold was reported", late)
	}
}

func TestDGAClientSpreadOverSuffixes(t *testing.T) {
	clock := &fakeClock{t0}
	e := newTestEngine(t, testConfig(""), clock)
	rng := rand.New(rand.NewPCG(11, 12))
	// A family of random letters spread over many suffixes, one name each
	// under most of them, as conficker does.
	suffixes := []string{"com", "net", "org", "info", "biz", "ws", "cn", "cc", "com", "net"}
	var sent []string
	for i, suffix := range suffixes {
		name := randomLetters(rng, 10) + "." + suffix
		sent = append(sent, name)
		at := t0.Add(time.Duration(i) * time.Second)
		e.process(clientEvent(infectedClient, name, at, rcodeNXDomain))
		if i == 4 {
			e.process(clientEvent(infectedClient, "gooogle.de", at, rcodeNXDomain))
		}
	}
	got := clientFindings(e)
	for _, name := range sent {
		label, _, _ := strings.Cut(name, ".")
		score := e.dga.ScoreLabel(label)
		// Names scoring well below the cluster's own are outliers, so the
		// check takes those that look as random as the family's.
		if _, ok := got[name]; !ok && score >= 0.9 {
			t.Errorf("no finding for %s of the infected client, whose name score is %.2f", name, score)
		}
	}
	if len(got) < 8 {
		t.Errorf("%d of the %d names reported, want at least 8", len(got), len(sent))
	}
	if _, ok := got["gooogle.de"]; ok {
		t.Errorf("the typo of the infected host's user was reported: %+v", got["gooogle.de"])
	}

	// A random-looking domain that resolves under a suffix no other name
	// of the cluster has is not taken for the command server.
	c2 := randomLetters(rng, 10) + ".io"
	e.process(clientEvent(infectedClient, c2, t0.Add(time.Minute), 0))
	if f, ok := clientFindings(e)[c2]; ok {
		t.Errorf("resolved %s under a suffix of its own reported: %+v", c2, f)
	}
}

func randomLetters(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + rng.IntN(26))
	}
	return string(b)
}

func TestDGAClientWindow(t *testing.T) {
	clock := &fakeClock{t0}
	e := newTestEngine(t, testConfig(""), clock)
	rng := rand.New(rand.NewPCG(11, 12))
	// Domains an hour apart never make a cluster of eight within the
	// 10-minute window.
	for i := range 12 {
		e.process(clientEvent(infectedClient, wordDomain(rng, "com"), t0.Add(time.Duration(i)*time.Hour), rcodeNXDomain))
	}
	if got := clientFindings(e); len(got) != 0 {
		t.Errorf("%d findings for domains spread over 12 hours, want none", len(got))
	}
}

func TestDGAClientTableBound(t *testing.T) {
	clock := &fakeClock{t0}
	cfg := testConfig("")
	cfg.DGAClients.MaxClients = 8
	e := newTestEngine(t, cfg, clock)
	rng := rand.New(rand.NewPCG(13, 14))
	for i := range 8 {
		e.process(clientEvent(infectedClient, wordDomain(rng, "com"), t0.Add(time.Duration(i)*time.Second), rcodeNXDomain))
	}
	for c := range uint64(100) {
		e.process(clientEvent(1000+c, typo(rng, "google.com"), t0.Add(time.Minute), rcodeNXDomain))
	}
	st := e.Stats()
	if st.DGAClients > 8 {
		t.Errorf("%d clients tracked, want at most 8", st.DGAClients)
	}
	if st.DGAClientsEvicted < 92 {
		t.Errorf("%d clients evicted, want at least 92", st.DGAClientsEvicted)
	}
	if c := e.clients.lookup(infectedClient); c == nil {
		t.Errorf("the DGA-like client was evicted before clients that are not")
	}
}

func TestDGAClientOff(t *testing.T) {
	clock := &fakeClock{t0}
	cfg := testConfig("")
	cfg.DGAClients.Enabled = false
	e := newTestEngine(t, cfg, clock)
	rng := rand.New(rand.NewPCG(15, 16))
	for i := range 12 {
		e.process(clientEvent(infectedClient, wordDomain(rng, "com"), t0.Add(time.Duration(i)*time.Second), rcodeNXDomain))
	}
	if got := clientFindings(e); len(got) != 0 {
		t.Errorf("%d client findings with the tracker off, want none", len(got))
	}
}

// BenchmarkProcessClients measures process on a mix of 1,000 clients,
// one query in eight answered NXDOMAIN for a typo of a popular name.
func BenchmarkProcessClients(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("dga_clients=%t", on), func(b *testing.B) {
			clock := &fakeClock{t0}
			cfg := testConfig("")
			cfg.DGAClients.Enabled = on
			e, err := New(cfg, make(chan events.Event), slog.New(slog.NewTextHandler(io.Discard, nil)), clock.now)
			if err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(17, 18))
			evs := make([]*events.Event, 4096)
			for i := range evs {
				client := uint64(1 + i%1000)
				if i%8 == 0 {
					evs[i] = clientEvent(client, typo(rng, popularNames[i%len(popularNames)]), t0, rcodeNXDomain)
					continue
				}
				evs[i] = clientEvent(client, fmt.Sprintf("www%d.d%d.example", i%7, i%1000), t0, 0)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				e.process(evs[i%len(evs)])
				i++
			}
		})
	}
}

// BenchmarkClientNewNXDomain measures process on NXDOMAIN answers for
// registered domains new to the client, from 1,000 clients: typos with a
// word fragment with the tracker off and on, and random labels, whose
// clusters pass and report every domain.
func BenchmarkClientNewNXDomain(b *testing.B) {
	for _, bc := range []struct {
		name   string
		on     bool
		random bool
	}{{"off", false, false}, {"typos", true, false}, {"random", true, true}} {
		b.Run(bc.name, func(b *testing.B) {
			clock := &fakeClock{t0}
			cfg := testConfig("")
			cfg.DGAClients.Enabled = bc.on
			e, err := New(cfg, make(chan events.Event), slog.New(slog.NewTextHandler(io.Discard, nil)), clock.now)
			if err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(19, 20))
			evs := make([]*events.Event, 1<<16)
			for i := range evs {
				// A typo with a word fragment, so that few names
				// repeat.
				label, suffix, _ := strings.Cut(typo(rng, popularNames[rng.IntN(len(popularNames))]), ".")
				label += dictionary[rng.IntN(len(dictionary))][:2+rng.IntN(4)]
				if bc.random {
					label = randomLetters(rng, 16)
				}
				name := label + "." + suffix
				evs[i] = clientEvent(uint64(1+i%1000), name, t0, rcodeNXDomain)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				e.process(evs[i%len(evs)])
				i++
			}
		})
	}
}
