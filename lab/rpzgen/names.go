// Package rpzgen generates large response policy zones for benchmarks. The
// names look like those of threat feeds: word and random labels of mixed
// lengths, zero to four subdomain labels, and a spread of TLDs and shared
// hosting domains. One seed and count always give the same names, so a
// benchmark in Go can rebuild the set that a server loaded from the file.
//
// The package writes no file itself; lab/cmd/rpzgen does.
package rpzgen

import (
	"strconv"
	"strings"
)

// DefaultSeed is the seed of the benchmark zone.
const DefaultSeed = 1

// MaxNameLength bounds a generated name: four subdomain labels of up to
// 12 bytes, a registrable label of up to 63 and a suffix of up to 17. Under
// a zone apex of up to 50 bytes it stays within the 253 characters of a
// domain name.
const MaxNameLength = 4*13 + 64 + 17

// WildcardEvery makes every WildcardEvery-th trigger, the first included, a
// wildcard: 10% of them.
const WildcardEvery = 10

// Trigger is one generated QNAME trigger.
type Trigger struct {
	// Name is relative to the zone apex, without a trailing dot, such as
	// "login.example.com".
	Name string
	// Wildcard makes the trigger "*.Name": the names below Name.
	Wildcard bool
}

// Names generates distinct trigger names. It is not safe for concurrent
// use.
type Names struct {
	rng   rng
	seen  *bloom
	total int
	count int
}

// NewNames returns a generator of n triggers from seed. It keeps a Bloom
// filter of 4 to 8 bytes a name to keep the names distinct.
func NewNames(n int, seed uint64) *Names {
	return &Names{rng: rng{state: seed}, seen: newBloom(n), total: n}
}

// Next returns the next trigger, and false after the n-th.
func (g *Names) Next() (Trigger, bool) {
	if g.count >= g.total {
		return Trigger{}, false
	}
	wildcard := g.count%WildcardEvery == 0
	g.count++
	for {
		name := g.rng.hostName(wildcard)
		// A name the filter may have seen is dropped, a false positive
		// included, so every name written is new.
		if g.seen.testAndAdd(name) {
			return Trigger{Name: name, Wildcard: wildcard}, true
		}
	}
}

// Listed reports whether name, relative to the apex, might be a trigger
// generated so far or lie below one. It has no false negatives, and its rare
// false positives only make a caller skip a name.
func (g *Names) Listed(name string) bool {
	for {
		if g.seen.contains(name) {
			return true
		}
		i := strings.IndexByte(name, '.')
		if i < 0 {
			return false
		}
		name = name[i+1:]
	}
}

// Below returns label + "." + base, or when that name is itself a trigger
// generated so far, label with a number appended below base.
func (g *Names) Below(label, base string) string {
	name := label + "." + base
	for i := 2; g.seen.contains(name); i++ {
		name = label + "-" + strconv.Itoa(i) + "." + base
	}
	return name
}

// Unlisted returns n names that no trigger generated so far covers, of the
// same shapes as the triggers. Called after the last Next, they are names a
// policy built from every trigger must not match. The same state gives the
// same names.
func (g *Names) Unlisted(n int) []string {
	r := rng{state: g.rng.state ^ 0x5bd1e9955bd1e995}
	var out []string
	for len(out) < n {
		name := r.hostName(false)
		if !g.Listed(name) {
			out = append(out, name)
		}
	}
	return out
}

// rng is SplitMix64. Its output is fixed by its definition, so a seed gives
// the same names whatever the Go release.
type rng struct{ state uint64 }

func (r *rng) next() uint64 {
	r.state += 0x9e3779b97f4a7c15
	return mix64(r.state)
}

func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn returns a number in [0, n) for n below 2^32.
func (r *rng) intn(n int) int {
	return int((r.next() >> 32) * uint64(n) >> 32)
}

// between returns a number in [lo, hi].
func (r *rng) between(lo, hi int) int { return lo + r.intn(hi-lo+1) }

// weighted is a table of choices with integer weights.
type weighted struct {
	items  []string
	cumul  []int
	weight int
}

func newWeighted(pairs ...any) *weighted {
	w := &weighted{}
	for i := 0; i < len(pairs); i += 2 {
		w.items = append(w.items, pairs[i].(string))
		w.weight += pairs[i+1].(int)
		w.cumul = append(w.cumul, w.weight)
	}
	return w
}

func (w *weighted) pick(r *rng) string {
	x := r.intn(w.weight)
	lo, hi := 0, len(w.cumul)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if w.cumul[mid] > x {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return w.items[lo]
}

// suffixes are public suffixes with weights chosen by hand to resemble
// abuse feeds, where com leads and cheap new TLDs and some country codes
// are common. No name ends in .internal, which local data uses.
var suffixes = newWeighted(
	"com", 380, "net", 60, "org", 40, "ru", 40, "top", 35, "xyz", 30,
	"info", 25, "cn", 20, "online", 18, "site", 16, "shop", 15, "io", 12,
	"de", 12, "com.br", 12, "co.uk", 10, "icu", 10, "club", 8, "vip", 8,
	"live", 8, "cc", 8, "in", 8, "tk", 8, "biz", 8, "app", 6, "co", 6,
	"fr", 6, "pl", 6, "vn", 6, "store", 6, "us", 6, "me", 6, "it", 5,
	"nl", 5, "ml", 5, "pw", 5, "co.id", 5, "buzz", 5, "sbs", 5, "cfd", 5,
	"life", 5, "space", 5, "fun", 5, "ga", 4, "cf", 4, "gq", 4, "su", 4,
	"com.ua", 4, "com.tr", 4, "ir", 4, "website", 4, "co.jp", 4,
	"com.au", 4, "es", 4, "ro", 4, "monster", 3, "rest", 3, "today", 3,
	"ws", 3, "to", 3, "ai", 3, "kr", 3, "cz", 3, "ch", 3, "be", 3, "at", 3,
	"co.za", 3, "com.mx", 3, "com.ar", 3, "gr", 2, "hu", 2, "se", 2,
)

// hosting are shared domains where abusers get subdomains for free.
var hosting = []string{
	"duckdns.org", "ddns.net", "no-ip.biz", "herokuapp.com", "blogspot.com",
	"github.io", "web.app", "firebaseapp.com", "pages.dev", "workers.dev",
	"azurewebsites.net", "netlify.app", "vercel.app", "glitch.me",
	"000webhostapp.com", "weebly.com", "wixsite.com", "ngrok-free.app",
	"trycloudflare.com", "r2.dev", "s3.amazonaws.com", "appspot.com",
	"myshopify.com", "square.site",
}

// words make the registrable labels that people choose.
var words = strings.Fields(`
	secure login account verify update support service online bank pay
	wallet crypto coin mail cloud drive docs office app shop store deal
	free gift prize win bonus casino bet game play stream movie tv news
	live web net host cdn static api track click ads promo offer sale
	cheap best top fast safe auth sso portal id user client my go get new
	info help center desk delivery parcel post express tax refund invoice
	billing payment card credit loan invest trade market exchange token
	nft mint claim airdrop reward points mobile phone sms otp code key
	access connect link share file download setup install soft tools
	media photo video music radio sport bio health care pharma med doc
	travel hotel book ticket flight car auto home house rent job work
	team group global world city local net24 pro plus max hub zone lab
	data sync backup storage server panel admin dash status alert notice
	security protect guard shield check scan fix repair clean boost speed
`)

// subLabels are common host labels below a registrable domain.
var subLabels = strings.Fields(`
	www m mail webmail login secure account accounts auth sso cdn static
	img api app portal update download dl files docs support help shop
	pay ns1 smtp vpn remote admin dev test staging beta id my online web
	cloud data
`)

// subdomainCounts weights the number of labels above the registrable
// domain of an exact trigger. Wildcards mostly name registrable domains.
var (
	subdomainCounts         = newWeighted("0", 55, "1", 30, "2", 10, "3", 4, "4", 1)
	wildcardSubdomainCounts = newWeighted("0", 80, "1", 20)
)

const (
	letters  = "abcdefghijklmnopqrstuvwxyz"
	alnum    = "abcdefghijklmnopqrstuvwxyz0123456789"
	hexChars = "0123456789abcdef"
	vowels   = "aeiou"
	conson   = "bcdfghjklmnpqrstvwxz"
)

// hostName returns one name: subdomain labels, a registrable label, and
// a public suffix or a shared hosting domain.
func (r *rng) hostName(wildcard bool) string {
	var b strings.Builder
	counts := subdomainCounts
	if wildcard {
		counts = wildcardSubdomainCounts
	}
	subs, _ := strconv.Atoi(counts.pick(r))
	for range subs {
		b.WriteString(r.subLabel())
		b.WriteByte('.')
	}
	b.WriteString(r.label())
	b.WriteByte('.')
	if r.intn(100) < 10 {
		b.WriteString(hosting[r.intn(len(hosting))])
	} else {
		b.WriteString(suffixes.pick(r))
	}
	return b.String()
}

func (r *rng) subLabel() string {
	if r.intn(100) < 60 {
		return subLabels[r.intn(len(subLabels))]
	}
	return r.randomString(alnum, r.between(2, 12))
}

// label returns a registrable label in one of the styles seen in feeds:
// joined words, pronounceable or random letters from generation
// algorithms, hexadecimal, or words with a number.
func (r *rng) label() string {
	var s string
	switch p := r.intn(100); {
	case p < 45:
		s = r.wordLabel()
	case p < 58:
		s = r.randomString(letters, r.between(8, 20))
	case p < 70:
		s = r.pronounceable(r.between(6, 16))
	case p < 85:
		s = r.randomString(alnum, r.between(6, 16))
	case p < 92:
		s = r.randomString(hexChars, r.between(12, 32))
	default:
		s = words[r.intn(len(words))] + "-" + r.randomString("0123456789", r.between(2, 6))
	}
	if len(s) > 63 {
		s = strings.TrimRight(s[:63], "-")
	}
	return s
}

func (r *rng) wordLabel() string {
	n := 1
	switch p := r.intn(100); {
	case p >= 85:
		n = 3
	case p >= 40:
		n = 2
	}
	sep := ""
	if r.intn(100) < 30 {
		sep = "-"
	}
	parts := make([]string, n)
	for i := range parts {
		parts[i] = words[r.intn(len(words))]
	}
	s := strings.Join(parts, sep)
	if r.intn(100) < 20 {
		s += r.randomString("0123456789", r.between(1, 4))
	}
	return s
}

func (r *rng) randomString(chars string, n int) string {
	buf := make([]byte, n)
	for i := range buf {
		buf[i] = chars[r.intn(len(chars))]
	}
	return string(buf)
}

func (r *rng) pronounceable(n int) string {
	buf := make([]byte, n)
	for i := range buf {
		if i%2 == 0 {
			buf[i] = conson[r.intn(len(conson))]
		} else {
			buf[i] = vowels[r.intn(len(vowels))]
		}
	}
	return string(buf)
}

// bloom is a Bloom filter with four probes per name and 32 to 64 bits a
// name, so that at most about 2 names in 10,000 are false positives.
type bloom struct {
	bits []uint64
	mask uint64
}

func newBloom(n int) *bloom {
	size := uint64(1 << 16)
	for size < uint64(n)*32 {
		size <<= 1
	}
	return &bloom{bits: make([]uint64, size/64), mask: size - 1}
}

// probes returns the two hashes from which the four bit positions derive.
func (f *bloom) probes(name string) (h1, h2 uint64) {
	// FNV-1a, then a mix for the second hash.
	h1 = 14695981039346656037
	for i := 0; i < len(name); i++ {
		h1 ^= uint64(name[i])
		h1 *= 1099511628211
	}
	return h1, mix64(h1) | 1
}

func (f *bloom) contains(name string) bool {
	h1, h2 := f.probes(name)
	for i := range uint64(4) {
		bit := (h1 + i*h2) & f.mask
		if f.bits[bit/64]&(1<<(bit%64)) == 0 {
			return false
		}
	}
	return true
}

// testAndAdd adds name and reports whether it was new, that is whether at
// least one of its bits was clear.
func (f *bloom) testAndAdd(name string) bool {
	h1, h2 := f.probes(name)
	added := false
	for i := range uint64(4) {
		bit := (h1 + i*h2) & f.mask
		if f.bits[bit/64]&(1<<(bit%64)) == 0 {
			f.bits[bit/64] |= 1 << (bit % 64)
			added = true
		}
	}
	return added
}
