package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// transferList returns a config with one transferred list whose file is in
// dir, followed by extra lines at the list's indentation.
func transferList(dir, extra string) string {
	return "policy:\n  lists:\n    - name: feed\n      file: " + filepath.Join(dir, "feed.rpz") +
		"\n      format: rpz\n      category: malware\n      zone: RPZ.Example.NET\n      primaries: [192.0.2.1, \"[2001:db8::1]:5353\"]\n" + extra
}

func TestZoneTransferConfig(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "key.secret")
	if err := os.WriteFile(secret, []byte("c2VjcmV0LXNlY3JldC1zZWNyZXQ=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := transferList(dir, "      allow_notify: [192.0.2.7, 198.51.100.9/24]\n      tsig:\n        name: Xfr-Key\n        secret_file: key.secret\n")
	c, err := Parse([]byte(yaml), filepath.Join(dir, "bulwark.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	l := c.Policy.Lists[0]
	if !l.Transferred() || !l.Remote() {
		t.Errorf("Transferred() = %v, Remote() = %v, want both true", l.Transferred(), l.Remote())
	}
	if l.Zone != "rpz.example.net." {
		t.Errorf("zone %q, want rpz.example.net.", l.Zone)
	}
	if got := len(l.PrimaryAddrs); got != 2 {
		t.Fatalf("%d primaries, want 2", got)
	}
	if got := l.PrimaryAddrs[0].String(); got != "192.0.2.1:53" {
		t.Errorf("first primary %s, want 192.0.2.1:53 (port 53 by default)", got)
	}
	if got := l.PrimaryAddrs[1].String(); got != "[2001:db8::1]:5353" {
		t.Errorf("second primary %s, want [2001:db8::1]:5353", got)
	}
	if got := len(l.NotifyPrefixes); got != 2 {
		t.Fatalf("%d allow_notify prefixes, want 2", got)
	}
	if got := l.NotifyPrefixes[1].String(); got != "198.51.100.0/24" {
		t.Errorf("second allow_notify prefix %s, want 198.51.100.0/24", got)
	}
	if l.TSIG.Name != "xfr-key." || l.TSIG.Algorithm != "hmac-sha256" {
		t.Errorf("key %q algorithm %q, want xfr-key. and the default hmac-sha256", l.TSIG.Name, l.TSIG.Algorithm)
	}
	if l.TSIG.Secret != "c2VjcmV0LXNlY3JldC1zZWNyZXQ=" {
		t.Errorf("secret %q, want the content of secret_file without the newline", l.TSIG.Secret)
	}
}

func TestZoneTransferConfigErrors(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain.txt")
	if err := os.WriteFile(plain, []byte("bad.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	plainList := "policy:\n  lists:\n    - name: plain\n      file: " + plain + "\n      format: domains\n      category: malware\n"
	tests := []struct {
		name, yaml string
		line       int
		text       string
	}{
		{"format not rpz", strings.Replace(transferList(dir, ""), "format: rpz", "format: hosts", 1), 5, `policy.lists[0].format: format "hosts" cannot be transferred`},
		{"missing zone", strings.Replace(transferList(dir, ""), "zone: RPZ.Example.NET", "zone: \"\"", 1), 7, "policy.lists[0].zone: missing zone"},
		{"bad zone", strings.Replace(transferList(dir, ""), "zone: RPZ.Example.NET", "zone: a..b", 1), 7, `invalid zone name "a..b"`},
		{"bad primary", strings.Replace(transferList(dir, ""), "192.0.2.1,", "primary.example,", 1), 8, `policy.lists[0].primaries: invalid address "primary.example"`},
		{"primary twice", strings.Replace(transferList(dir, ""), "192.0.2.1,", "192.0.2.1, 192.0.2.1:53,", 1), 8, "primary 192.0.2.1:53 is listed twice"},
		{"url and primaries", transferList(dir, "      url: https://feeds.example/x.rpz\n"), 9, "policy.lists[0].url: a list has either url or primaries"},
		{"refresh", transferList(dir, "      refresh: 5m\n"), 9, "policy.lists[0].refresh: refresh applies to url lists"},
		{"bad allow_notify", transferList(dir, "      allow_notify: [somewhere]\n"), 9, `policy.lists[0].allow_notify: invalid address or prefix "somewhere"`},
		{"key without name", transferList(dir, "      tsig:\n        secret: c2VjcmV0\n"), 10, "policy.lists[0].tsig.name: missing key name"},
		{"unknown algorithm", transferList(dir, "      tsig:\n        name: k\n        algorithm: hmac-md5\n        secret: c2VjcmV0\n"), 11, `policy.lists[0].tsig.algorithm: unknown algorithm "hmac-md5"`},
		{"no secret", transferList(dir, "      tsig:\n        name: k\n"), 10, "policy.lists[0].tsig.secret: missing secret"},
		{"two secrets", transferList(dir, "      tsig:\n        name: k\n        secret: c2VjcmV0\n        secret_file: k.secret\n"), 12, "both secret and secret_file are set"},
		{"secret not base64", transferList(dir, "      tsig:\n        name: k\n        secret: not*base64\n"), 11, "policy.lists[0].tsig.secret: the TSIG secret is not valid base64"},
		{"missing secret file", transferList(dir, "      tsig:\n        name: k\n        secret_file: /nonexistent/k.secret\n"), 11, "policy.lists[0].tsig.secret_file: cannot read the TSIG secret"},
		{"missing directory", strings.Replace(transferList(dir, ""), filepath.Join(dir, "feed.rpz"), "/nonexistent/feed.rpz", 1), 4, "invalid directory /nonexistent for the transferred zone"},
		{"zone without primaries", plainList + "      zone: rpz.example.net\n", 7, "policy.lists[0].zone: zone applies to transferred lists"},
		{"tsig without primaries", plainList + "      tsig:\n        name: k\n", 8, "policy.lists[0].tsig: tsig applies to transferred lists"},
		{"empty primaries", plainList + "      primaries: []\n", 7, "policy.lists[0].primaries: empty list of primaries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "test.yaml")
			checkConfigError(t, err, tt.line, tt.text)
		})
	}
}

// TestZoneTransferSecretNotInError checks that a malformed secret is not
// copied into the error, which goes to logs and terminals.
func TestZoneTransferSecretNotInError(t *testing.T) {
	yaml := transferList(t.TempDir(), "      tsig:\n        name: k\n        secret: hunter2-not-base64!\n")
	_, err := Parse([]byte(yaml), "test.yaml")
	if err == nil {
		t.Fatal("Parse = nil error, want an invalid secret")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %q contains the secret", err)
	}
}
