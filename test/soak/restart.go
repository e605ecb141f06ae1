package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"bulwark/internal/autotrust"
	"bulwark/internal/feed"
	"bulwark/internal/xfr"
)

// Names of the state the restart row configures.
const (
	feedListName = "soak-feed"
	rpzListName  = "soak-rpz"
	rpzZone      = "rpz.soak.invalid."
	// stateNames is how many names the feed and the RPZ zone list. The
	// versions alternate between stateNames and stateNames+1 names, so
	// every start rewrites both copies.
	stateNames = 2000
)

// stateFiles are the files Bulwark writes and the restart row checks.
type stateFiles struct {
	trustAnchors, feedCopy, rpzCopy string
}

// stateServers serve the feed over HTTP and the RPZ zone over AXFR. Each
// request gets a new version, so that Bulwark rewrites its copies at
// every start.
type stateServers struct {
	version atomic.Uint32
	http    *http.Server
	dns     []*dns.Server
}

func namesOfVersion(v uint32) int { return stateNames + int(v%2) }

func (s *stateServers) start(feedAddr, rpzAddr string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/list.txt", func(w http.ResponseWriter, r *http.Request) {
		v := s.version.Add(1)
		w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
		for i := range namesOfVersion(v) {
			fmt.Fprintf(w, "blocked%d.feed.soak.invalid\n", i)
		}
	})
	ln, err := net.Listen("tcp", feedAddr)
	if err != nil {
		return fmt.Errorf("listen for the feed: %w", err)
	}
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go s.http.Serve(ln)

	for _, network := range []string{"udp", "tcp"} {
		srv := &dns.Server{Addr: rpzAddr, Net: network, Handler: dns.HandlerFunc(s.serveRPZ)}
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		failed := make(chan error, 1)
		go func() { failed <- srv.ListenAndServe() }()
		select {
		case <-started:
			s.dns = append(s.dns, srv)
		case err := <-failed:
			return fmt.Errorf("listen for the RPZ primary on %s %s: %w", network, rpzAddr, err)
		}
	}
	return nil
}

func (s *stateServers) stop() {
	if s.http != nil {
		s.http.Close()
	}
	for _, srv := range s.dns {
		srv.Shutdown()
	}
}

func (s *stateServers) soa() *dns.SOA {
	return &dns.SOA{
		Hdr: dns.RR_Header{Name: rpzZone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60},
		Ns:  "primary.soak.invalid.", Mbox: "hostmaster.soak.invalid.",
		Serial: s.version.Load() + 1, Refresh: 60, Retry: 60, Expire: 3600, Minttl: 60,
	}
}

// serveRPZ answers SOA queries with a serial that grows with each
// transfer, and AXFR with the whole zone.
func (s *stateServers) serveRPZ(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 || !strings.EqualFold(req.Question[0].Name, rpzZone) {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeRefused)
		w.WriteMsg(m)
		return
	}
	switch req.Question[0].Qtype {
	case dns.TypeAXFR, dns.TypeIXFR:
		v := s.version.Add(1)
		soa := s.soa()
		soa.Serial = v
		records := []dns.RR{soa}
		for i := range namesOfVersion(v) {
			rr, _ := dns.NewRR(fmt.Sprintf("blocked%d.%s 60 IN CNAME .", i, rpzZone))
			records = append(records, rr)
		}
		records = append(records, soa)
		ch := make(chan *dns.Envelope, 1)
		tr := new(dns.Transfer)
		go func() {
			for i := 0; i < len(records); i += 500 {
				ch <- &dns.Envelope{RR: records[i:min(i+500, len(records))]}
			}
			close(ch)
		}()
		tr.Out(w, req, ch)
		w.Hijack()
	default:
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		m.Answer = []dns.RR{s.soa()}
		w.WriteMsg(m)
	}
}

// restartConfig derives the restart row's config from the lab's: the
// RFC 5011 state file and two lists whose copies Bulwark writes.
func restartConfig(labConfig string, files stateFiles, feedAddr, rpzAddr string) (string, error) {
	data, err := os.ReadFile(labConfig)
	if err != nil {
		return "", fmt.Errorf("read lab config: %w", err)
	}
	text := string(data)
	lists := fmt.Sprintf(`  lists:
    - name: %s
      file: %s
      url: http://%s/list.txt
      format: domains
      category: malware
    - name: %s
      file: %s
      zone: %s
      primaries: [%s]
      format: rpz
      category: malware
`, feedListName, files.feedCopy, feedAddr, rpzListName, files.rpzCopy, rpzZone, rpzAddr)
	if !strings.Contains(text, "\n  lists:\n") || !strings.Contains(text, "\ndnssec:\n") {
		return "", fmt.Errorf("lab config %s has no policy.lists or dnssec section to extend", labConfig)
	}
	text = strings.Replace(text, "  lists:\n", lists, 1)
	text = strings.Replace(text, "\ndnssec:\n", "\ndnssec:\n  auto_trust_anchor_file: "+files.trustAnchors+"\n", 1)
	return text, nil
}

// checkStateFiles parses each state file that exists and returns one
// message per file that is incomplete or unreadable. A copy that does not
// exist yet is fine: Bulwark may have been killed before its first write.
func checkStateFiles(files stateFiles) []string {
	var bad []string
	if _, err := os.Stat(files.trustAnchors); err == nil {
		state, err := autotrust.Load(files.trustAnchors)
		if err != nil {
			bad = append(bad, err.Error())
		} else if len(state.Keys()) == 0 {
			bad = append(bad, files.trustAnchors+": no keys")
		}
	}
	if msg := checkList(files.feedCopy, feed.Domains, ""); msg != "" {
		bad = append(bad, msg)
	}
	if _, err := os.Stat(files.rpzCopy); err == nil {
		if _, err := xfr.ReadCopy(files.rpzCopy, rpzZone); err != nil {
			bad = append(bad, err.Error())
		}
	}
	if msg := checkList(files.rpzCopy, feed.RPZ, rpzZone); msg != "" {
		bad = append(bad, msg)
	}
	return bad
}

// checkList parses a list copy and checks that it has as many rules as
// one of the versions served.
func checkList(path string, format feed.Format, origin string) string {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	res, err := feed.Parse(f, format, feed.Options{Origin: origin})
	if err != nil {
		return fmt.Sprintf("%s: %v", path, err)
	}
	if n := len(res.Rules); n != stateNames && n != stateNames+1 {
		return fmt.Sprintf("%s: %d rules, want %d or %d", path, n, stateNames, stateNames+1)
	}
	return ""
}

// restartRow kills the resolver with SIGKILL kills times under the normal
// load, checks the state files after each kill and starts it again.
func (s *suite) restartRow(ctx context.Context, kills int) rowResult {
	row := rowResult{Name: "restart", Description: fmt.Sprintf("kill -9 x%d, state files", kills)}
	dir := filepath.Join(s.workDir, "state")
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		row.Err = err
		return row
	}
	files := stateFiles{
		trustAnchors: filepath.Join(dir, "root.autotrust"),
		feedCopy:     filepath.Join(dir, "feed.txt"),
		rpzCopy:      filepath.Join(dir, "rpz.copy"),
	}
	servers := &stateServers{}
	feedAddr := fmt.Sprintf("127.0.0.1:%d", s.port+141)
	rpzAddr := fmt.Sprintf("127.0.0.1:%d", s.port+142)
	if err := servers.start(feedAddr, rpzAddr); err != nil {
		row.Err = err
		return row
	}
	defer servers.stop()
	text, err := restartConfig(s.lab.BulwarkConfig, files, feedAddr, rpzAddr)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "bulwark.yaml"), []byte(text), 0o644)
	}
	if err != nil {
		row.Err = err
		return row
	}

	// Switch the resolver to the derived config.
	s.resolver.stop(syscall.SIGTERM)
	s.resolver.config = filepath.Join(dir, "bulwark.yaml")
	defer func() { s.resolver.config = s.lab.BulwarkConfig }()
	crashesBefore := s.resolver.crashCount()
	if err := s.resolver.start(); err != nil {
		row.Err = err
		return row
	}

	load, err := s.newLoad()
	if err != nil {
		row.Err = err
		return row
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	results := make(chan loadResult, 1)
	go func() { results <- load.run(loadCtx, 24*time.Hour) }()

	var failed []string
	for i := 0; i < kills && ctx.Err() == nil; i++ {
		time.Sleep(time.Duration(300+rand.IntN(1200)) * time.Millisecond)
		load.paused.Store(true)
		s.resolver.stop(syscall.SIGKILL)
		load.abandon()
		if bad := checkStateFiles(files); len(bad) > 0 {
			row.BadFiles += len(bad)
			failed = append(failed, fmt.Sprintf("kill %d: %s", i+1, strings.Join(bad, "; ")))
		}
		if err := s.resolver.start(); err != nil {
			failed = append(failed, fmt.Sprintf("kill %d: %v", i+1, err))
			row.Crashes++
			if err := s.resolver.start(); err != nil {
				row.Err = fmt.Errorf("no start after kill %d: %w", i+1, err)
				break
			}
		}
		load.paused.Store(false)
	}
	stopLoad()
	row.Load = <-results
	row.Crashes += s.resolver.crashCount() - crashesBefore
	if len(failed) > 0 && row.Err == nil {
		row.Err = errors.New(strings.Join(failed[:min(3, len(failed))], " | "))
	}
	// Back to the lab config for whatever follows.
	s.resolver.stop(syscall.SIGTERM)
	return row
}
