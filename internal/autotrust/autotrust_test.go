package autotrust

import (
	"crypto"
	"maps"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// testKey is a key signing key of the root with its private key.
type testKey struct {
	dnskey *dns.DNSKEY
	signer crypto.Signer
}

func newKey(t *testing.T) testKey {
	t.Helper()
	k := &dns.DNSKEY{
		Hdr:       dns.RR_Header{Name: ".", Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 172800},
		Flags:     dns.ZONE | dns.SEP,
		Protocol:  3,
		Algorithm: dns.ECDSAP256SHA256,
	}
	priv, err := k.Generate(256)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{dnskey: k, signer: priv.(crypto.Signer)}
}

// revoked returns the key with the REVOKE bit set; its key tag changes.
func (k testKey) revoked() testKey {
	r := dns.Copy(k.dnskey).(*dns.DNSKEY)
	r.Flags |= dns.REVOKE
	return testKey{dnskey: r, signer: k.signer}
}

// response builds a DNSKEY RRset of keys, signed at now by each of signers.
func response(t *testing.T, now time.Time, keys, signers []testKey) []dns.RR {
	t.Helper()
	var set []dns.RR
	for _, k := range keys {
		set = append(set, dns.Copy(k.dnskey))
	}
	out := append([]dns.RR(nil), set...)
	for _, s := range signers {
		sig := &dns.RRSIG{
			Hdr:        dns.RR_Header{Name: ".", Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: 172800},
			Algorithm:  s.dnskey.Algorithm,
			SignerName: ".",
			KeyTag:     s.dnskey.KeyTag(),
			Inception:  uint32(now.Add(-time.Hour).Unix()),
			Expiration: uint32(now.Add(10 * 24 * time.Hour).Unix()),
		}
		if err := sig.Sign(s.signer, set); err != nil {
			t.Fatal(err)
		}
		out = append(out, sig)
	}
	return out
}

// stateOf returns the state of key in s, ignoring the REVOKE bit, or Start
// when it is not tracked.
func stateOf(s *State, key testKey) KeyState {
	for _, k := range s.Keys() {
		if dk, ok := k.Record.(*dns.DNSKEY); ok && sameKey(dk, key.dnskey) {
			return k.State
		}
	}
	return Start
}

// isAnchor reports whether key, without its REVOKE bit, is among the trust
// anchors of s.
func isAnchor(s *State, key testKey) bool {
	for _, rr := range s.TrustAnchors() {
		if dk, ok := rr.(*dns.DNSKEY); ok && sameKey(dk, key.dnskey) && dk.Flags&dns.REVOKE == 0 {
			return true
		}
	}
	return false
}

const day = 24 * time.Hour

// step is one probe of the root DNSKEY RRset: at day, the RRset holds keys
// and is signed by signers.
type step struct {
	day         int
	keys        []int // indexes into the test's keys; negative -i means key i revoked
	signers     []int // same notation
	insecure    bool
	wantChanged bool
	want        map[int]KeyState // by key index
}

func TestUpdateScenarios(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		seeded []int
		steps  []step
	}{
		{
			name:   "new key accepted after hold-down",
			seeded: []int{1},
			steps: []step{
				{day: 0, keys: []int{1}, signers: []int{1}, want: map[int]KeyState{1: Valid, 2: Start}},
				{day: 1, keys: []int{1, 2}, signers: []int{1}, wantChanged: true, want: map[int]KeyState{1: Valid, 2: AddPend}},
				{day: 15, keys: []int{1, 2}, signers: []int{1}, want: map[int]KeyState{2: AddPend}},
				{day: 30, keys: []int{1, 2}, signers: []int{1}, want: map[int]KeyState{2: AddPend}},
				{day: 31, keys: []int{1, 2}, signers: []int{1}, wantChanged: true, want: map[int]KeyState{1: Valid, 2: Valid}},
			},
		},
		{
			name:   "key removed before hold-down ends",
			seeded: []int{1},
			steps: []step{
				{day: 1, keys: []int{1, 2}, signers: []int{1}, wantChanged: true, want: map[int]KeyState{2: AddPend}},
				{day: 10, keys: []int{1}, signers: []int{1}, wantChanged: true, want: map[int]KeyState{1: Valid, 2: Start}},
				{day: 20, keys: []int{1, 2}, signers: []int{1}, wantChanged: true, want: map[int]KeyState{2: AddPend}},
				{day: 45, keys: []int{1, 2}, signers: []int{1}, want: map[int]KeyState{2: AddPend}},
				{day: 50, keys: []int{1, 2}, signers: []int{1}, wantChanged: true, want: map[int]KeyState{2: Valid}},
			},
		},
		{
			name:   "revoked key",
			seeded: []int{1, 2},
			steps: []step{
				{day: 1, keys: []int{-1, 2}, signers: []int{-1, 2}, wantChanged: true, want: map[int]KeyState{1: Revoked, 2: Valid}},
				{day: 5, keys: []int{2}, signers: []int{2}, want: map[int]KeyState{1: Revoked, 2: Valid}},
				{day: 30, keys: []int{2}, signers: []int{2}, want: map[int]KeyState{1: Revoked}},
				{day: 31, keys: []int{2}, signers: []int{2}, wantChanged: true, want: map[int]KeyState{1: Removed, 2: Valid}},
				{day: 40, keys: []int{1, 2}, signers: []int{1, 2}, want: map[int]KeyState{1: Removed, 2: Valid}},
			},
		},
		{
			name:   "revoked key seen until removal",
			seeded: []int{1, 2},
			steps: []step{
				{day: 1, keys: []int{-1, 2}, signers: []int{-1, 2}, wantChanged: true, want: map[int]KeyState{1: Revoked}},
				{day: 25, keys: []int{-1, 2}, signers: []int{-1, 2}, want: map[int]KeyState{1: Revoked}},
				{day: 50, keys: []int{2}, signers: []int{2}, want: map[int]KeyState{1: Revoked}},
				{day: 56, keys: []int{2}, signers: []int{2}, wantChanged: true, want: map[int]KeyState{1: Removed}},
			},
		},
		{
			name:   "revoked pending key",
			seeded: []int{1},
			steps: []step{
				{day: 1, keys: []int{1, 2}, signers: []int{1}, wantChanged: true, want: map[int]KeyState{2: AddPend}},
				{day: 2, keys: []int{1, -2}, signers: []int{1, -2}, wantChanged: true, want: map[int]KeyState{2: Revoked}},
				{day: 40, keys: []int{1, 2}, signers: []int{1}, want: map[int]KeyState{2: Revoked}},
			},
		},
		{
			name:   "revoke bit without its own signature",
			seeded: []int{1, 2},
			steps: []step{
				{day: 1, keys: []int{-1, 2}, signers: []int{2}, wantChanged: true, want: map[int]KeyState{1: Missing, 2: Valid}},
			},
		},
		{
			name:   "unknown revoked key",
			seeded: []int{1},
			steps: []step{
				{day: 1, keys: []int{1, -2}, signers: []int{1, -2}, want: map[int]KeyState{1: Valid, 2: Start}},
			},
		},
		{
			name:   "missing key",
			seeded: []int{1, 2},
			steps: []step{
				{day: 1, keys: []int{2}, signers: []int{2}, wantChanged: true, want: map[int]KeyState{1: Missing, 2: Valid}},
				{day: 100, keys: []int{2}, signers: []int{2}, want: map[int]KeyState{1: Missing}},
				{day: 101, keys: []int{1, 2}, signers: []int{2}, wantChanged: true, want: map[int]KeyState{1: Valid, 2: Valid}},
				{day: 102, keys: []int{-1, 2}, signers: []int{-1, 2}, wantChanged: true, want: map[int]KeyState{1: Revoked}},
			},
		},
		{
			name:   "insecure response",
			seeded: []int{1},
			steps: []step{
				{day: 1, keys: []int{2}, signers: []int{2}, insecure: true, want: map[int]KeyState{1: Valid, 2: Start}},
				{day: 40, keys: []int{-1}, signers: []int{-1}, insecure: true, want: map[int]KeyState{1: Valid}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := map[int]testKey{}
			for i := 1; i <= 3; i++ {
				keys[i] = newKey(t)
			}
			pick := func(indexes []int) []testKey {
				var out []testKey
				for _, i := range indexes {
					if i < 0 {
						out = append(out, keys[-i].revoked())
					} else {
						out = append(out, keys[i])
					}
				}
				return out
			}
			s := New(t.TempDir() + "/root.state")
			var seed []dns.RR
			for _, k := range pick(tt.seeded) {
				seed = append(seed, k.dnskey)
			}
			if !s.Seed(seed) {
				t.Fatal("Seed on an empty state = false")
			}
			for _, st := range tt.steps {
				now := t0.Add(time.Duration(st.day) * day)
				rrset := response(t, now, pick(st.keys), pick(st.signers))
				if got := s.Update(rrset, !st.insecure, now); got != st.wantChanged {
					t.Errorf("day %d: Update changed = %v, want %v", st.day, got, st.wantChanged)
				}
				for i, want := range st.want {
					if got := stateOf(s, keys[i]); got != want {
						t.Errorf("day %d: key %d is %s, want %s", st.day, i, got, want)
					}
					wantAnchor := want == Valid || want == Missing
					if got := isAnchor(s, keys[i]); got != wantAnchor {
						t.Errorf("day %d: key %d (%s) is a trust anchor: %v, want %v", st.day, i, want, got, wantAnchor)
					}
				}
			}
		})
	}
}

func TestUpdateHoldDownUsesLongTTL(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k1, k2 := newKey(t), newKey(t)
	s := New("unused")
	s.Seed([]dns.RR{k1.dnskey})
	signed := func(now time.Time) []dns.RR {
		rrset := response(t, now, []testKey{k1, k2}, []testKey{k1})
		rrset[2].(*dns.RRSIG).OrigTtl = uint32(40 * day / time.Second)
		return rrset
	}
	s.Update(signed(t0), true, t0)
	s.Update(signed(t0.Add(35*day)), true, t0.Add(35*day))
	if got := stateOf(s, k2); got != AddPend {
		t.Errorf("after 35 days with an original TTL of 40 days, key is %s, want addpend", got)
	}
	s.Update(signed(t0.Add(40*day)), true, t0.Add(40*day))
	if got := stateOf(s, k2); got != Valid {
		t.Errorf("after 40 days with an original TTL of 40 days, key is %s, want valid", got)
	}
}

func TestSeededDSBecomesDNSKEY(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k1 := newKey(t)
	s := New("unused")
	s.Seed([]dns.RR{k1.dnskey.ToDS(dns.SHA256)})
	anchors := s.TrustAnchors()
	if len(anchors) != 1 || anchors[0].Header().Rrtype != dns.TypeDS {
		t.Fatalf("TrustAnchors before the first probe = %v, want the seeded DS", anchors)
	}
	if !s.Update(response(t, t0, []testKey{k1}, []testKey{k1}), true, t0) {
		t.Error("Update that matched the DS = unchanged, want changed")
	}
	anchors = s.TrustAnchors()
	if len(anchors) != 1 || anchors[0].Header().Rrtype != dns.TypeDNSKEY || !sameKey(anchors[0].(*dns.DNSKEY), k1.dnskey) {
		t.Errorf("TrustAnchors after the first probe = %v, want the DNSKEY of the DS", anchors)
	}
	if got := stateOf(s, k1); got != Valid {
		t.Errorf("key is %s, want valid", got)
	}
}

func TestSeedKeepsKnownZone(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	s := New("unused")
	if !s.Seed([]dns.RR{k1.dnskey}) {
		t.Fatal("first Seed = false")
	}
	if s.Seed([]dns.RR{k2.dnskey}) {
		t.Error("Seed for a zone that has keys = true, want false")
	}
	if got := len(s.Keys()); got != 1 {
		t.Errorf("%d keys after the second Seed, want 1", got)
	}
}

func TestUpdateIgnoresOtherZone(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k1, other := newKey(t), newKey(t)
	other.dnskey.Hdr.Name = "example."
	s := New("unused")
	s.Seed([]dns.RR{k1.dnskey})
	if s.Update([]dns.RR{other.dnskey}, true, t0) {
		t.Error("Update for a zone that is not a trust point = changed, want unchanged")
	}
	if got := len(s.Keys()); got != 1 {
		t.Errorf("%d keys tracked, want only the root key", got)
	}
}

func TestUpdateIgnoresZSK(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k1 := newKey(t)
	zsk := newKey(t)
	zsk.dnskey.Flags = dns.ZONE
	s := New("unused")
	s.Seed([]dns.RR{k1.dnskey})
	if s.Update(response(t, t0, []testKey{k1, zsk}, []testKey{k1}), true, t0) {
		t.Error("Update with a new ZSK = changed, want unchanged")
	}
	if got := len(s.Keys()); got != 1 {
		t.Errorf("%d keys tracked, want only the KSK", got)
	}
}

func TestNextProbe(t *testing.T) {
	tests := []struct {
		ttl, sigExpiry time.Duration
		want           time.Duration
	}{
		{2 * day, 10 * day, day},
		{2 * day, 12 * time.Hour, 6 * time.Hour},
		{time.Hour, 10 * day, time.Hour},
		{60 * day, 60 * day, 15 * day},
		{0, 0, time.Hour},
	}
	for _, tt := range tests {
		if got := NextProbe(tt.ttl, tt.sigExpiry); got != tt.want {
			t.Errorf("NextProbe(%s, %s) = %s, want %s", tt.ttl, tt.sigExpiry, got, tt.want)
		}
	}
}

func TestRetryProbe(t *testing.T) {
	tests := []struct {
		ttl, sigExpiry time.Duration
		want           time.Duration
	}{
		{2 * day, 10 * day, 4*time.Hour + 48*time.Minute},
		{60 * day, 60 * day, day},
		{time.Hour, day, time.Hour},
	}
	for _, tt := range tests {
		if got := RetryProbe(tt.ttl, tt.sigExpiry); got != tt.want {
			t.Errorf("RetryProbe(%s, %s) = %s, want %s", tt.ttl, tt.sigExpiry, got, tt.want)
		}
	}
}

// TestUpdateRootRollover2018 applies the real root DNSKEY RRset of
// 2018-01-29, during the rollover from KSK 19036 to KSK 20326, to a state
// seeded with the DS of 19036.
func TestUpdateRootRollover2018(t *testing.T) {
	data, err := os.ReadFile("testdata/root-dnskey-2018012900.zone")
	if err != nil {
		t.Fatal(err)
	}
	var rrset []dns.RR
	zp := dns.NewZoneParser(strings.NewReader(string(data)), ".", "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrset = append(rrset, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	ds19036, err := dns.NewRR(". IN DS 19036 8 2 49AAC11D7B6F6446702E54A1607371607A1A41855200FD2CE1CDDE32F24E8FB5")
	if err != nil {
		t.Fatal(err)
	}
	s := New("unused")
	s.Seed([]dns.RR{ds19036})
	now := time.Date(2018, 1, 29, 12, 0, 0, 0, time.UTC)
	if !s.Update(rrset, true, now) {
		t.Error("first Update = unchanged, want changed")
	}
	tags := map[uint16]KeyState{}
	for _, k := range s.Keys() {
		if key, ok := k.Record.(*dns.DNSKEY); ok {
			tags[key.KeyTag()] = k.State
		}
	}
	want := map[uint16]KeyState{19036: Valid, 20326: AddPend}
	if !maps.Equal(tags, want) {
		t.Errorf("key states = %v, want %v (the ZSK is not tracked)", tags, want)
	}
	s.Update(rrset, true, now.Add(31*day))
	anchors := s.TrustAnchors()
	if len(anchors) != 2 {
		t.Errorf("after the hold-down, trust anchors = %v, want 19036 and 20326", anchors)
	}
}
