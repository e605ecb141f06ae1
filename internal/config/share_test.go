package config

import (
	"os"
	"strings"
	"testing"
)

func TestShareValid(t *testing.T) {
	dir := t.TempDir()
	doc := `share:
  publish:
    listen: 127.0.0.1:5353
    allow_transfer: [127.0.0.1, 10.0.0.0/8]
    notify: [192.0.2.10]
    zones:
      - name: RPZ.Bulwark.Example
        indicators: ` + dir + `/ind.csv
  sources:
    - name: cert
      type: taxii
      url: https://taxii.example/api1/
      collection: 91a7b528-80eb-42ed-a74d-c6fbd5a26116
`
	cfg, err := Parse([]byte(doc), "test.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	p := cfg.Share.Publish
	if p.AddrPort.Port() != 5353 || len(p.TransferPrefixes) != 2 || p.NotifyAddrs[0].Port() != 53 {
		t.Errorf("publish = %+v", p)
	}
	if z := p.Zones[0]; z.Name != "rpz.bulwark.example." || z.TTL.D().Seconds() != 60 {
		t.Errorf("zone = %+v, want canonical name and TTL 60s", z)
	}
	if *p.RequireTSIG {
		t.Error("require_tsig without a key = true, want false")
	}
	s := cfg.Share.Sources[0]
	if s.Trust != 50 || s.Mode != "audit" || s.Interval.D().Hours() != 1 {
		t.Errorf("source defaults = %+v, want trust 50, mode audit, interval 1h", s)
	}
}

func TestShareInvalid(t *testing.T) {
	publish := "share:\n  publish:\n    listen: 127.0.0.1:5353\n"
	cases := []struct {
		name, doc, key string
	}{
		{"no allow_transfer", publish + "    zones: [{name: rpz.example, indicators: /tmp/x.csv}]\n", "share.publish.allow_transfer"},
		{"no zones", publish + "    allow_transfer: [127.0.0.1]\n", "share.publish.zones"},
		{"bad listen", "share:\n  publish:\n    listen: localhost\n", "share.publish.listen"},
		{"zones without listen", "share:\n  publish:\n    zones: [{name: rpz.example, indicators: /tmp/x.csv}]\n", "share.publish.listen"},
		{"bad prefix", publish + "    allow_transfer: [10.0.0.0/99]\n", "share.publish.allow_transfer"},
		{"require without key", publish + "    allow_transfer: [127.0.0.1]\n    require_tsig: true\n    zones: [{name: rpz.example, indicators: /tmp/x.csv}]\n", "share.publish.require_tsig"},
		{"bad type", "share:\n  sources: [{name: a, type: rss, url: https://a.example/}]\n", "share.sources[0].type"},
		{"taxii no collection", "share:\n  sources: [{name: a, type: taxii, url: https://a.example/}]\n", "share.sources[0].collection"},
		{"bad mode", "share:\n  sources: [{name: a, type: csv, url: https://a.example/x.csv, mode: block}]\n", "share.sources[0].mode"},
		{"bad trust", "share:\n  sources: [{name: a, type: csv, url: https://a.example/x.csv, trust: 101}]\n", "share.sources[0].trust"},
		{"bad url", "share:\n  sources: [{name: a, type: csv, url: ftp://a.example/x.csv}]\n", "share.sources[0].url"},
		{"short interval", "share:\n  sources: [{name: a, type: csv, url: https://a.example/x.csv, interval: 10s}]\n", "share.sources[0].interval"},
		{"twice", "share:\n  sources: [{name: a, type: csv, url: https://a.example/x.csv}, {name: a, type: csv, url: https://a.example/y.csv}]\n", "share.sources[1].name"},
		{"store zone without store", publish + "    allow_transfer: [127.0.0.1]\n    zones: [{name: rpz.example, from: store}]\n", "intel.store.enabled"},
		{"nod zone without intel", publish + "    allow_transfer: [127.0.0.1]\n    zones: [{name: nod.example, from: nod:10m}]\n", "intel.enabled"},
		{"port of the admin API", "admin:\n  listen: 127.0.0.1:5353\n" + publish + "    allow_transfer: [127.0.0.1]\n    zones: [{name: rpz.example, indicators: /tmp/x.csv}]\n", "is also the address of admin.listen"},
		{"zero ttl", publish + "    allow_transfer: [127.0.0.1]\n    zones: [{name: rpz.example, indicators: /tmp/x.csv, ttl: 0s}]\n", "share.publish.zones[0].ttl"},
		{"state file is a directory", publish + "    allow_transfer: [127.0.0.1]\n    state_file: " + os.TempDir() + "\n    zones: [{name: rpz.example, indicators: /tmp/x.csv}]\n", "it is a directory"},
		{"nod zone of another window", publish + "    allow_transfer: [127.0.0.1]\n    zones: [{name: nod.example, from: nod:5m}]\nintel:\n  enabled: true\n", "use one of nod:10m, nod:1h, nod:24h"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.doc), "test.yaml")
			if err == nil || !strings.Contains(err.Error(), c.key) {
				t.Errorf("Parse = %v, want an error naming %s", err, c.key)
			}
		})
	}
}
