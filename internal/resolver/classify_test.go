package resolver

import (
	"testing"

	"github.com/miekg/dns"
)

// msg builds a response from records given as text, by section.
func msg(t *testing.T, rcode int, aa bool, answer, ns, extra []string) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.Response, m.Authoritative, m.Rcode = true, aa, rcode
	for _, sec := range []struct {
		text []string
		dst  *[]dns.RR
	}{{answer, &m.Answer}, {ns, &m.Ns}, {extra, &m.Extra}} {
		for _, s := range sec.text {
			rr, err := dns.NewRR(s)
			if err != nil {
				t.Fatalf("dns.NewRR(%q): %v", s, err)
			}
			*sec.dst = append(*sec.dst, rr)
		}
	}
	return m
}

func TestClassify(t *testing.T) {
	soa := "example.com. 300 IN SOA ns.example.com. h.example.com. 1 2 3 4 60"
	tests := []struct {
		name       string
		resp       *dns.Msg
		zone       string
		qname      string
		want       kind
		wantRRs    int
		wantGlue   int
		wantTarget string
	}{
		{"answer", msg(t, 0, true, []string{"www.example.com. 300 IN A 192.0.2.1"}, nil, nil),
			"example.com.", "www.example.com.", kindAnswer, 1, 0, ""},
		{"answer outside bailiwick ignored",
			msg(t, 0, true, []string{"www.victim.net. 300 IN A 192.0.2.66"}, []string{soa}, nil),
			"example.com.", "www.example.com.", kindNoData, 0, 0, ""},
		{"CNAME leaving the zone stops there",
			msg(t, 0, true, []string{"www.example.com. 300 IN CNAME cdn.other.net.", "cdn.other.net. 300 IN A 192.0.2.66"}, nil, nil),
			"example.com.", "www.example.com.", kindCNAME, 1, 0, "cdn.other.net."},
		{"CNAME inside the zone followed",
			msg(t, 0, true, []string{"www.example.com. 300 IN CNAME web.example.com.", "web.example.com. 300 IN A 192.0.2.2"}, nil, nil),
			"example.com.", "www.example.com.", kindAnswer, 2, 0, ""},
		{"referral with glue in bailiwick only",
			msg(t, 0, false, nil,
				[]string{"sub.example.com. 300 IN NS ns1.sub.example.com.", "sub.example.com. 300 IN NS ns.other.net."},
				[]string{"ns1.sub.example.com. 300 IN A 192.0.2.3", "ns.other.net. 300 IN A 192.0.2.66"}),
			"example.com.", "www.sub.example.com.", kindReferral, 0, 1, ""},
		{"referral to a sibling is lame",
			msg(t, 0, false, nil, []string{"other.com. 300 IN NS ns.other.com."}, nil),
			"example.com.", "www.example.com.", kindLame, 0, 0, ""},
		{"upward referral is lame",
			msg(t, 0, false, nil, []string{"com. 300 IN NS a.gtld.net."}, nil),
			"example.com.", "www.example.com.", kindLame, 0, 0, ""},
		{"NXDOMAIN with SOA", msg(t, dns.RcodeNameError, true, nil, []string{soa}, nil),
			"example.com.", "nope.example.com.", kindNXDomain, 0, 0, ""},
		{"NODATA with SOA", msg(t, 0, true, nil, []string{soa}, nil),
			"example.com.", "www.example.com.", kindNoData, 0, 0, ""},
		{"SOA of another zone ignored",
			msg(t, 0, true, nil, []string{"victim.net. 300 IN SOA ns.victim.net. h. 1 2 3 4 5"}, nil),
			"example.com.", "www.example.com.", kindNoData, 0, 0, ""},
		{"empty non-authoritative is lame", msg(t, 0, false, nil, nil, nil),
			"example.com.", "www.example.com.", kindLame, 0, 0, ""},
		{"DNAME synthesised",
			msg(t, 0, true, []string{"old.example.com. 3600 IN DNAME new.example.com.", "host.new.example.com. 300 IN A 192.0.2.20"}, nil, nil),
			"example.com.", "host.old.example.com.", kindAnswer, 3, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := classify(tt.resp, tt.zone, tt.qname, dns.TypeA)
			if got.kind != tt.want {
				t.Fatalf("classify kind = %d, want %d", got.kind, tt.want)
			}
			if len(got.rrs) != tt.wantRRs {
				t.Errorf("classify kept %d answer records %v, want %d", len(got.rrs), got.rrs, tt.wantRRs)
			}
			if len(got.glue) != tt.wantGlue {
				t.Errorf("classify kept %d glue records %v, want %d", len(got.glue), got.glue, tt.wantGlue)
			}
			if got.target != tt.wantTarget {
				t.Errorf("classify target = %q, want %q", got.target, tt.wantTarget)
			}
		})
	}
}

func TestMinimised(t *testing.T) {
	tests := []struct {
		zone, name string
		extra      int
		want       string
		wantType   uint16
	}{
		{".", "www.example.com.", 1, "com.", dns.TypeA},
		{"com.", "www.example.com.", 1, "example.com.", dns.TypeA},
		{"com.", "www.example.com.", 2, "www.example.com.", dns.TypeMX},
		{"example.com.", "example.com.", 1, "example.com.", dns.TypeMX},
	}
	for _, tt := range tests {
		got, gotType := minimised(tt.zone, tt.name, dns.TypeMX, tt.extra)
		if got != tt.want || gotType != tt.wantType {
			t.Errorf("minimised(%s, %s, MX, %d) = %s %s, want %s %s", tt.zone, tt.name, tt.extra,
				got, dns.TypeToString[gotType], tt.want, dns.TypeToString[tt.wantType])
		}
	}
}

func TestParent(t *testing.T) {
	tests := map[string]string{"www.example.com.": "example.com.", "com.": ".", ".": "", `a\.b.example.`: "example."}
	for in, want := range tests {
		if got := parent(in); got != want {
			t.Errorf("parent(%q) = %q, want %q", in, got, want)
		}
	}
}
