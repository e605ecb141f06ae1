package trace

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// WriteText writes rep as readable text: the question, one line per step
// indented by its depth, then the answer.
func WriteText(w io.Writer, rep *Report) error {
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, "trace of %s %s, flavour %s, %.1f ms\n\n", rep.Name, rep.Type, rep.Flavour, rep.DurationMS)
	for _, s := range rep.Steps {
		fmt.Fprintf(b, "%9.1fms %s%s\n", s.AtMS, strings.Repeat("  ", s.Depth), stepText(s))
		for _, rr := range s.Records {
			fmt.Fprintf(b, "%11s %s  %s\n", "", strings.Repeat("  ", s.Depth), rr)
		}
	}
	if rep.StepsDropped > 0 {
		fmt.Fprintf(b, "... %d more steps not kept\n", rep.StepsDropped)
	}
	writeAnswer(b, rep.Answer)
	return b.Flush()
}

func writeAnswer(b *bufio.Writer, a Answer) {
	fmt.Fprintf(b, "\nanswer: %s, %s", a.Rcode, a.Security)
	if a.Blocked {
		fmt.Fprint(b, ", blocked by policy")
	}
	if a.EDE != nil {
		fmt.Fprintf(b, ", %s", edeText(a.EDE))
	}
	fmt.Fprintln(b)
	for _, rr := range a.Answer {
		fmt.Fprintf(b, "  %s\n", rr)
	}
	if len(a.Authority) > 0 {
		fmt.Fprintln(b, "authority:")
		for _, rr := range a.Authority {
			fmt.Fprintf(b, "  %s\n", rr)
		}
	}
}

// stepText returns the one-line description of s.
func stepText(s Step) string {
	var t string
	switch s.Kind {
	case KindCache:
		t = cacheText(s)
	case KindZoneCut:
		t = "zone cut " + s.Zone
	case KindQuery:
		t = fmt.Sprintf("query %s %s to %s (zone %s)", s.Name, s.Type, s.Server, s.Zone)
	case KindResponse:
		t = responseText(s)
	case KindTimeout:
		t = fmt.Sprintf("timeout: no response from %s within %.0f ms", s.Server, s.RTTMS)
	case KindError:
		t = "error"
		if s.Server != "" {
			t += " from " + s.Server
		} else if s.Zone != "" {
			t += " in zone " + s.Zone
		}
	case KindLookup:
		t = fmt.Sprintf("lookup %s %s", s.Name, s.Type)
	case KindCNAME, KindDNAME:
		t = fmt.Sprintf("%s %s -> %s", strings.ToUpper(string(s.Kind)), s.Name, s.Target)
	case KindDS, KindDNSKEY:
		t = keysText(s)
	case KindRRSIG:
		t = rrsigText(s)
	case KindDenial:
		t = fmt.Sprintf("%s proof for %s %s in %s", s.Result, s.Name, s.Type, s.Zone)
		if s.Security != "" {
			t += ": " + s.Security
		}
	case KindSecurity:
		t = fmt.Sprintf("security of %s %s: %s", s.Name, s.Type, s.Security)
	case KindPolicy:
		t = policyText(s)
	default:
		t = string(s.Kind)
	}
	if s.EDE != nil && s.Kind != KindPolicy {
		t += ", " + edeText(s.EDE)
	}
	if s.Detail != "" {
		t += ": " + s.Detail
	}
	return t
}

func cacheText(s Step) string {
	t := fmt.Sprintf("cache hit: %s %s %s", s.Result, s.Name, s.Type)
	if s.Target != "" {
		t += " -> " + s.Target
	}
	if s.TTL != nil {
		t += fmt.Sprintf(", ttl %d", *s.TTL)
	}
	if s.Security != "" {
		t += ", " + s.Security
	}
	return t
}

func responseText(s Step) string {
	t := fmt.Sprintf("response from %s over %s in %.1f ms: %s", s.Server, strings.ToUpper(s.Protocol), s.RTTMS, s.Rcode)
	if s.Result != "" {
		t += ", " + s.Result
	}
	if s.Target != "" {
		t += " to " + s.Target
	}
	return t
}

func keysText(s Step) string {
	var keys []string
	for _, k := range s.Keys {
		switch {
		case k.Flags != 0:
			keys = append(keys, fmt.Sprintf("key tag %d alg %d flags %d", k.Tag, k.Algorithm, k.Flags))
		case k.DigestType != 0:
			keys = append(keys, fmt.Sprintf("key tag %d alg %d digest %d", k.Tag, k.Algorithm, k.DigestType))
		default:
			keys = append(keys, fmt.Sprintf("key tag %d alg %d", k.Tag, k.Algorithm))
		}
	}
	t := fmt.Sprintf("%s of %s", strings.ToUpper(string(s.Kind)), s.Zone)
	if s.Result != "" {
		t += " (" + s.Result + ")"
	}
	if len(keys) > 0 {
		t += ": " + strings.Join(keys, "; ")
	}
	if s.Security != "" {
		t += ", " + s.Security
	}
	return t
}

func rrsigText(s Step) string {
	t := fmt.Sprintf("RRSIG over %s %s", s.Name, s.Type)
	if len(s.Keys) > 0 {
		t += fmt.Sprintf(" by %s key tag %d alg %d", s.Signer, s.Keys[0].Tag, s.Keys[0].Algorithm)
	}
	return t + ": " + s.Result
}

func policyText(s Step) string {
	if s.List == "" {
		return fmt.Sprintf("policy: %s: no list matched", s.Name)
	}
	t := fmt.Sprintf("policy: %s: list %s (category %s) matched %s trigger %s, action %s",
		s.Name, s.List, s.Category, s.Match, s.Trigger, s.Action)
	if s.EDE != nil {
		t += ", " + edeText(s.EDE)
	}
	return t
}

func edeText(e *EDE) string {
	if e.Text == "" {
		return fmt.Sprintf("EDE %d", e.Code)
	}
	return fmt.Sprintf("EDE %d (%s)", e.Code, e.Text)
}
