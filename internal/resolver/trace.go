package resolver

import (
	"errors"
	"net/netip"
	"time"

	"bulwark/internal/cache"
	"bulwark/internal/dnssec"
	"bulwark/internal/exchange"
	"bulwark/internal/trace"

	"github.com/miekg/dns"
)

// This file records the steps of a resolution in the trace.Recorder that
// the request carries, when it carries one. Every function returns at once
// for a request without a recorder, so untraced queries build no steps.

// kindNames name the outcome kinds in traces.
var kindNames = map[kind]string{
	kindFailed:   "failed",
	kindAnswer:   "answer",
	kindCNAME:    "cname",
	kindReferral: "referral",
	kindNXDomain: "nxdomain",
	kindNoData:   "nodata",
	kindLame:     "lame",
}

func typeName(t uint16) string { return dns.Type(t).String() }

// traceCacheSet records an RRset found in the cache.
func (q *request) traceCacheSet(name string, qtype uint16, s cache.Set) {
	if q.trace == nil {
		return
	}
	ttl := uint32(0)
	if len(s.RRs) > 0 {
		ttl = s.RRs[0].Header().Ttl
	}
	step := trace.Step{
		Kind: trace.KindCache, Name: name, Type: typeName(qtype), Result: "RRset",
		TTL: &ttl, Security: s.Security.String(), Records: rrStrings(s.RRs),
	}
	q.trace.Add(step)
}

func (q *request) traceCacheNegative(name string, qtype uint16, neg cache.Negative) {
	if q.trace == nil {
		return
	}
	result := "NODATA"
	if neg.NXDomain {
		result = "NXDOMAIN"
	}
	ttl := neg.TTL
	q.trace.Add(trace.Step{
		Kind: trace.KindCache, Name: name, Type: typeName(qtype), Result: result,
		TTL: &ttl, Security: neg.Security.String(), EDE: reasonEDE(neg.Security, neg.Reason),
	})
}

// traceNSEC records an answer synthesised from cached NSEC or NSEC3
// records.
func (q *request) traceNSEC(name string, qtype uint16, res Result) {
	if q.trace == nil {
		return
	}
	q.trace.Add(trace.Step{
		Kind: trace.KindCache, Name: name, Type: typeName(qtype),
		Result:   dns.RcodeToString[res.Rcode] + " synthesised from validated NSEC or NSEC3 records (RFC 8198)",
		Security: res.Security.String(), Records: rrStrings(res.Authority),
	})
}

func (q *request) traceZoneCut(zone, reason string) {
	if q.trace == nil {
		return
	}
	q.trace.Add(trace.Step{Kind: trace.KindZoneCut, Zone: zone, Detail: reason})
}

func (q *request) traceQuery(zone string, server netip.AddrPort, qname string, qtype uint16, noEDNS bool) {
	if q.trace == nil {
		return
	}
	s := trace.Step{Kind: trace.KindQuery, Zone: zone, Server: server.String(), Name: qname, Type: typeName(qtype)}
	if noEDNS {
		s.Detail = "without EDNS, after FORMERR or NOTIMP"
	}
	q.trace.Add(s)
}

// traceResponse records a response from a server of zone and what it
// means for qname and qtype.
func (q *request) traceResponse(zone string, server netip.AddrPort, qname string, qtype uint16, resp exchange.Response) {
	if q.trace == nil {
		return
	}
	m := resp.Msg
	s := trace.Step{
		Kind: trace.KindResponse, Zone: zone, Server: server.String(), Name: qname, Type: typeName(qtype),
		Protocol: "udp", Rcode: dns.RcodeToString[m.Rcode], RTTMS: trace.Millis(resp.RTT),
	}
	if resp.TCP {
		s.Protocol = "tcp"
	}
	switch m.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
		c := classify(m, zone, qname, qtype)
		s.Result = kindNames[c.kind]
		switch c.kind {
		case kindReferral:
			s.Target = c.zone
		case kindCNAME:
			s.Target = c.target
		}
	case dns.RcodeRefused:
		s.Result = "lame"
	}
	q.trace.Add(s)
}

func (q *request) traceQueryError(zone string, server netip.AddrPort, timeout time.Duration, err error) {
	if q.trace == nil {
		return
	}
	if errors.Is(err, exchange.ErrTimeout) {
		q.trace.Add(trace.Step{Kind: trace.KindTimeout, Zone: zone, Server: server.String(), RTTMS: trace.Millis(timeout)})
		return
	}
	q.trace.Add(trace.Step{Kind: trace.KindError, Zone: zone, Server: server.String(), Detail: err.Error()})
}

// traceZoneError records why no server of zone gave a usable response.
func (q *request) traceZoneError(zone string, err error) {
	if q.trace == nil {
		return
	}
	q.trace.Add(trace.Step{Kind: trace.KindError, Zone: zone, Detail: err.Error()})
}

// enter records the start of a nested lookup of name and qtype, made for
// purpose, and nests the steps that follow until leave.
func (q *request) enter(name string, qtype uint16, purpose string) {
	if q.trace == nil {
		return
	}
	q.trace.Add(trace.Step{Kind: trace.KindLookup, Name: name, Type: typeName(qtype), Detail: purpose})
	q.trace.Enter()
}

func (q *request) leave() { q.trace.Leave() }

// traceAliases records the CNAME and DNAME records of rrs.
func (q *request) traceAliases(rrs []dns.RR) {
	if q.trace == nil {
		return
	}
	for _, rr := range rrs {
		switch rr := rr.(type) {
		case *dns.CNAME:
			q.trace.Add(trace.Step{Kind: trace.KindCNAME, Name: rr.Hdr.Name, Target: rr.Target})
		case *dns.DNAME:
			q.trace.Add(trace.Step{Kind: trace.KindDNAME, Name: rr.Hdr.Name, Target: rr.Target})
		}
	}
}

// traceTrust records what authenticates the DNSKEY RRset of zone: trust
// anchors or its DS RRset.
func (q *request) traceTrust(zone string, t dnssec.Trust, source string, sec dnssec.Security, err *dnssec.Error) {
	if q.trace == nil {
		return
	}
	s := trace.Step{Kind: trace.KindDS, Zone: zone, Result: source, Security: sec.String(), EDE: reasonEDE(sec, err)}
	for _, ds := range t.DS {
		s.Keys = append(s.Keys, trace.Key{Tag: ds.KeyTag, Algorithm: ds.Algorithm, DigestType: ds.DigestType})
	}
	for _, k := range t.DNSKEYs {
		s.Keys = append(s.Keys, trace.Key{Tag: k.KeyTag(), Algorithm: k.Algorithm, Flags: k.Flags})
	}
	q.trace.Add(s)
}

// traceNoTrust records that zone has no chain of trust, or a broken one.
func (q *request) traceNoTrust(zone, reason string, sec dnssec.Security, err *dnssec.Error) {
	if q.trace == nil {
		return
	}
	q.trace.Add(trace.Step{Kind: trace.KindDS, Zone: zone, Result: reason, Security: sec.String(), EDE: reasonEDE(sec, err)})
}

// traceKeys records the DNSKEY RRset of zone used to validate its data.
func (q *request) traceKeys(zone string, keys []*dns.DNSKEY, sec dnssec.Security, err *dnssec.Error) {
	if q.trace == nil {
		return
	}
	s := trace.Step{Kind: trace.KindDNSKEY, Zone: zone, Security: sec.String(), EDE: reasonEDE(sec, err)}
	for _, k := range keys {
		s.Keys = append(s.Keys, trace.Key{Tag: k.KeyTag(), Algorithm: k.Algorithm, Flags: k.Flags})
	}
	q.trace.Add(s)
}

// verify checks set with dnssec.VerifyRRset and records the signatures
// checked.
func (r *Resolver) verify(req *request, set []dns.RR, sigs []*dns.RRSIG, keys []*dns.DNSKEY) (*dns.RRSIG, error) {
	sig, err := dnssec.VerifyRRset(set, sigs, keys, r.validationTime(), req.budget)
	if req.trace != nil && len(set) > 0 {
		req.traceSigs(set[0].Header(), sigs, sig, err)
	}
	return sig, err
}

// traceSigs records the outcome of checking sigs over the RRset with
// header h: the one that verified as valid, or each as failed with the
// reason that none verified.
func (q *request) traceSigs(h *dns.RR_Header, sigs []*dns.RRSIG, valid *dns.RRSIG, err error) {
	base := trace.Step{Kind: trace.KindRRSIG, Name: dns.CanonicalName(h.Name), Type: typeName(h.Rrtype)}
	if len(sigs) == 0 {
		base.Result = "missing"
		if err != nil {
			base.EDE = errEDE(err)
		}
		q.trace.Add(base)
		return
	}
	for _, s := range sigs {
		step := base
		step.Signer = dns.CanonicalName(s.SignerName)
		step.Keys = []trace.Key{{Tag: s.KeyTag, Algorithm: s.Algorithm}}
		switch {
		case valid == s:
			step.Result = "valid"
		case valid != nil:
			continue // another signature verified: this one was not needed
		default:
			step.Result = "failed"
			step.EDE = errEDE(err)
		}
		q.trace.Add(step)
	}
}

// traceKeySigs records the check of the DNSKEY RRset of zone against
// trust. VerifyDNSKEYs does not say which signature verified, so on
// success the signatures by keys that trust names are marked valid.
func (q *request) traceKeySigs(zone string, sigs []*dns.RRSIG, t dnssec.Trust, err *dnssec.Error) {
	if q.trace == nil {
		return
	}
	trusted := map[uint16]bool{}
	for _, ds := range t.DS {
		trusted[ds.KeyTag] = true
	}
	for _, k := range t.DNSKEYs {
		trusted[k.KeyTag()] = true
	}
	h := &dns.RR_Header{Name: zone, Rrtype: dns.TypeDNSKEY}
	if err != nil {
		q.traceSigs(h, sigs, nil, err)
		return
	}
	for _, s := range sigs {
		if trusted[s.KeyTag] && dns.CanonicalName(s.SignerName) == zone {
			q.traceSigs(h, []*dns.RRSIG{s}, s, nil)
		}
	}
}

// traceDenial records an NSEC or NSEC3 proof that denied, such as NXDOMAIN
// or NODATA, holds for name and qtype in zone.
func (q *request) traceDenial(zone, name string, qtype uint16, denied string, d denial, sec dnssec.Security, err *dnssec.Error) {
	if q.trace == nil {
		return
	}
	used := d.Used()
	if len(used) == 0 {
		for _, n := range d.NSEC {
			used = append(used, n)
		}
		for _, n := range d.NSEC3 {
			used = append(used, n)
		}
	}
	q.trace.Add(trace.Step{
		Kind: trace.KindDenial, Zone: zone, Name: name, Type: typeName(qtype), Result: denied,
		Security: sec.String(), EDE: reasonEDE(sec, err), Records: rrStrings(used),
	})
}

// traceSecurity records the validation state of an outcome for name and
// qtype.
func (q *request) traceSecurity(name string, qtype uint16, sec dnssec.Security, err *dnssec.Error) {
	if q.trace == nil {
		return
	}
	q.trace.Add(trace.Step{Kind: trace.KindSecurity, Name: name, Type: typeName(qtype), Security: sec.String(), EDE: reasonEDE(sec, err)})
}

// reasonEDE returns the EDE of a validation reason, or nil when the state
// needs none.
func reasonEDE(sec dnssec.Security, err *dnssec.Error) *trace.EDE {
	if err == nil || sec == dnssec.Secure {
		return nil
	}
	return &trace.EDE{Code: err.EDE, Text: err.Text}
}

func errEDE(err error) *trace.EDE {
	e := dnssec.AsError(err)
	return &trace.EDE{Code: e.EDE, Text: e.Text}
}

// maxTracedRecords bounds the records listed in one step.
const maxTracedRecords = 20

func rrStrings(rrs []dns.RR) []string {
	var out []string
	for i, rr := range rrs {
		if i == maxTracedRecords {
			out = append(out, "...")
			break
		}
		out = append(out, rr.String())
	}
	return out
}
