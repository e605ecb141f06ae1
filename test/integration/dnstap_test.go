package integration

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"bulwark/test/labkit"
)

// TestDnstapFstrmCapture runs a resolver with dnstap to fstrm_capture, the
// Frame Streams collector of the fstrm library, and decodes the captured
// file with dnstap-ldns. A query through the resolver must show up as
// CLIENT_QUERY and CLIENT_RESPONSE from the truncated client address. Its
// resolution must show up as RESOLVER_QUERY and RESOLVER_RESPONSE naming
// lab servers.
func TestDnstapFstrmCapture(t *testing.T) {
	needDnstapTools(t)
	dir := t.TempDir()
	socket := filepath.Join(dir, "dnstap.sock")
	capture := filepath.Join(dir, "capture.fstrm")
	collector := startFstrmCapture(t, socket, capture)

	dnsPort := port + 86
	path := filepath.Join(dir, "dnstap.yaml")
	logPath := filepath.Join(dir, "dnstap.log")
	writeDerivedConfig(t, path, dnsPort, "dnstap:\n  socket: "+socket+"\n  identity: lab-dnstap\n  version: lab-version\n")
	cmd, err := labkit.StartBulwark(binary, path, net.JoinHostPort(resolver, strconv.Itoa(dnsPort)), logPath)
	if err != nil {
		t.Fatal(err)
	}
	name := lab.Info.QminDeepName
	r, err := kdig(resolver, dnsPort, name, "A")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != "NOERROR" {
		t.Fatalf("%s: rcode %s, want NOERROR\n%s", name, r.Status, r.Output)
	}

	// Stopping the resolver ends the session with STOP and FINISH; then
	// fstrm_capture closes its file on SIGTERM.
	if err := labkit.StopProcess(cmd); err != nil {
		t.Errorf("resolver did not stop cleanly: %v", err)
	}
	logText, _ := os.ReadFile(logPath)
	if !strings.Contains(string(logText), "dnstap collector connected") {
		t.Errorf("resolver log has no dnstap connection:\n%s", logText)
	}
	if strings.Contains(string(logText), "closing an output failed") {
		t.Errorf("the dnstap session did not end cleanly:\n%s", logText)
	}
	stopFstrmCapture(t, collector)

	checkDnstapCapture(t, readCapture(t, capture), name)
}

// TestDnstapCollectorLate starts a resolver before its collector: queries
// are answered meanwhile, and once fstrm_capture listens the resolver
// connects and sends the messages of later queries.
func TestDnstapCollectorLate(t *testing.T) {
	needDnstapTools(t)
	dir := t.TempDir()
	socket := filepath.Join(dir, "dnstap.sock")
	capture := filepath.Join(dir, "capture.fstrm")
	dnsPort := port + 87
	path := filepath.Join(dir, "late.yaml")
	logPath := filepath.Join(dir, "late.log")
	writeDerivedConfig(t, path, dnsPort, "dnstap:\n  socket: "+socket+"\n")
	cmd, err := labkit.StartBulwark(binary, path, net.JoinHostPort(resolver, strconv.Itoa(dnsPort)), logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { labkit.StopProcess(cmd) })
	first := lab.Info.QminDeepName
	if r, err := kdig(resolver, dnsPort, first, "A"); err != nil || r.Status != "NOERROR" {
		t.Fatalf("%s without a collector: %v %+v, want NOERROR", first, err, r)
	}
	if !strings.Contains(readFile(t, logPath), "dnstap collector unreachable") {
		t.Errorf("no warning about the missing collector in the log:\n%s", readFile(t, logPath))
	}

	collector := startFstrmCapture(t, socket, capture)
	for deadline := time.Now().Add(40 * time.Second); !strings.Contains(readFile(t, logPath), "dnstap collector connected"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no connection to the collector within 40s (the backoff is at most 30s):\n%s", readFile(t, logPath))
		}
	}
	second := lab.Info.CNAMEChainName
	if r, err := kdig(resolver, dnsPort, second, "A"); err != nil || r.Status != "NOERROR" {
		t.Fatalf("%s: %v %+v, want NOERROR", second, err, r)
	}
	if err := labkit.StopProcess(cmd); err != nil {
		t.Errorf("resolver did not stop cleanly: %v", err)
	}
	stopFstrmCapture(t, collector)
	records := readCapture(t, capture)
	if !hasQuestion(records, "CLIENT_QUERY", second) {
		t.Errorf("no CLIENT_QUERY for %s A, sent after the collector came up (%d messages)", second, len(records))
	}
}

func needDnstapTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"fstrm_capture", "dnstap-ldns"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: install it with lab/deps.sh %s", tool, tool)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// readCapture decodes a Frame Streams file of dnstap messages with
// dnstap-ldns.
func readCapture(t *testing.T, capture string) []dnstapRecord {
	t.Helper()
	out, err := exec.Command("dnstap-ldns", "-y", "-r", capture).CombinedOutput()
	if err != nil {
		t.Fatalf("dnstap-ldns -y -r %s: %v\n%s", capture, err, out)
	}
	return parseDnstapYAML(string(out))
}

// dnstapRecord is one message as dnstap-ldns -y prints it: its top-level
// keys, the keys of its message section prefixed with "message.", and the
// whole text.
type dnstapRecord struct {
	fields map[string]string
	text   string
}

// parseDnstapYAML splits the YAML documents of dnstap-ldns -y and keeps,
// from each, the scalar keys of the payload and of its message section.
func parseDnstapYAML(out string) []dnstapRecord {
	var records []dnstapRecord
	for _, doc := range strings.Split(out, "\n---") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		r := dnstapRecord{fields: map[string]string{}, text: doc}
		for _, line := range strings.Split(doc, "\n") {
			key, value, ok := strings.Cut(strings.TrimSpace(line), ": ")
			indent := len(line) - len(strings.TrimLeft(line, " "))
			if !ok || indent > 2 {
				continue
			}
			if indent == 2 {
				key = "message." + key
			}
			r.fields[key] = strings.Trim(value, `"`)
		}
		records = append(records, r)
	}
	return records
}

func checkDnstapCapture(t *testing.T, records []dnstapRecord, name string) {
	t.Helper()
	servers := map[string]bool{}
	for _, s := range lab.Info.Servers {
		servers[s.Address] = true
	}
	count := map[string]int{}
	for _, r := range records {
		typ := r.fields["message.type"]
		count[typ]++
		if r.fields["identity"] != "lab-dnstap" || r.fields["version"] != "lab-version" {
			t.Errorf("%s: identity %q version %q, want lab-dnstap, lab-version\n%s", typ, r.fields["identity"], r.fields["version"], r.text)
		}
		switch typ {
		case "CLIENT_QUERY", "CLIENT_RESPONSE":
			checkClientRecord(t, r)
		case "RESOLVER_QUERY", "RESOLVER_RESPONSE":
			if addr := r.fields["message.response_address"]; !servers[addr] {
				t.Errorf("%s: response_address %q, want a lab server\n%s", typ, addr, r.text)
			}
			if r.fields["message.response_port"] != strconv.Itoa(lab.Info.AuthPort) {
				t.Errorf("%s: response_port %q, want %d\n%s", typ, r.fields["message.response_port"], lab.Info.AuthPort, r.text)
			}
		default:
			t.Errorf("message of type %q, want only client and resolver messages\n%s", typ, r.text)
		}
	}
	// The probe of StartBulwark and the query each make a pair of client
	// messages; the resolution of an uncached name makes resolver ones.
	if count["CLIENT_QUERY"] < 2 || count["CLIENT_RESPONSE"] < 2 {
		t.Errorf("%d CLIENT_QUERY and %d CLIENT_RESPONSE, want at least 2 each", count["CLIENT_QUERY"], count["CLIENT_RESPONSE"])
	}
	if count["RESOLVER_QUERY"] == 0 || count["RESOLVER_RESPONSE"] == 0 {
		t.Errorf("%d RESOLVER_QUERY and %d RESOLVER_RESPONSE, want some of each", count["RESOLVER_QUERY"], count["RESOLVER_RESPONSE"])
	}
	for _, typ := range []string{"CLIENT_QUERY", "CLIENT_RESPONSE", "RESOLVER_QUERY", "RESOLVER_RESPONSE"} {
		if !hasQuestion(records, typ, name) {
			t.Errorf("no %s for %s A", typ, name)
		}
	}
	if t.Failed() {
		t.Logf("%d messages: %v", len(records), count)
	}
}

// checkClientRecord checks that a client message has the truncated client
// address and no client port.
func checkClientRecord(t *testing.T, r dnstapRecord) {
	t.Helper()
	typ := r.fields["message.type"]
	if got := r.fields["message.query_address"]; got != "127.0.0.0" {
		t.Errorf("%s: query_address %q, want 127.0.0.0 (127.0.0.1 truncated to /24)\n%s", typ, got, r.text)
	}
	if _, ok := r.fields["message.query_port"]; ok {
		t.Errorf("%s: query_port present, want the client port left out\n%s", typ, r.text)
	}
	if r.fields["message.socket_family"] != "INET" || r.fields["message.socket_protocol"] != "UDP" {
		t.Errorf("%s: socket %q %q, want INET UDP\n%s", typ, r.fields["message.socket_family"], r.fields["message.socket_protocol"], r.text)
	}
	if typ == "CLIENT_QUERY" && r.fields["message.query_time"] == "" {
		t.Errorf("%s: no query_time\n%s", typ, r.text)
	}
	if typ == "CLIENT_RESPONSE" && r.fields["message.response_time"] == "" {
		t.Errorf("%s: no response_time\n%s", typ, r.text)
	}
}

// hasQuestion reports whether one of records of type typ has name in its
// question section, as dnstap-ldns prints it.
func hasQuestion(records []dnstapRecord, typ, name string) bool {
	for _, r := range records {
		if r.fields["message.type"] == typ && strings.Contains(r.text, ";"+name+"\tIN\tA") {
			return true
		}
	}
	return false
}

// startFstrmCapture runs fstrm_capture on socket, writing to file, and
// waits until the socket exists.
func startFstrmCapture(t *testing.T, socket, file string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("fstrm_capture", "-t", "protobuf:dnstap.Dnstap", "-u", socket, "-w", file)
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start fstrm_capture: %v", err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(socket); err == nil {
			return cmd
		}
		if time.Now().After(deadline) {
			t.Fatalf("fstrm_capture made no socket %s within 10s\n%s", socket, stderr.String())
		}
	}
}

// stopFstrmCapture sends SIGTERM to fstrm_capture, which closes its file
// and exits.
func stopFstrmCapture(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Logf("fstrm_capture exited with %v", err)
		}
	case <-ctx.Done():
		t.Fatal("fstrm_capture did not exit within 10s of SIGTERM")
	}
}
