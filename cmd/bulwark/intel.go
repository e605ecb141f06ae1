package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"bulwark/internal/intel"

	"github.com/miekg/dns"
	"golang.org/x/net/idna"
)

const intelUsage = `usage: bulwark intel score [-detector NAME] [-reason] FILE

Score each domain name in FILE ("-" for standard input), one per line,
with the detector built into this binary, and print
name<TAB>score<TAB>verdict, the verdict being malicious or benign.
Blank lines and lines starting with # are skipped. Invalid names are
reported on standard error with their line number and skipped; the exit
status is then 1.

`

func intelCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "score" {
		if len(args) > 0 && args[0] != "-h" && args[0] != "-help" && args[0] != "--help" {
			fmt.Fprintf(stderr, "bulwark intel: unknown subcommand %q\n\n", args[0])
		}
		fmt.Fprint(stderr, intelUsage)
		return 2
	}
	return intelScore(args[1:], stdout, stderr)
}

func intelScore(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("intel score", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, intelUsage)
		fs.PrintDefaults()
	}
	detector := fs.String("detector", "dga", "`name` of the detector: "+strings.Join(intel.DetectorNames, " or "))
	reason := fs.Bool("reason", false, "print the reason for each score as a fourth column")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	d, err := intel.Detector(*detector)
	if err != nil {
		fmt.Fprintf(stderr, "bulwark intel score: %v\n", err)
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "bulwark intel score: give one file of names, or - for standard input; got %d arguments\n", fs.NArg())
		return 2
	}

	in, name, err := openInput(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "bulwark intel score: %v\n", err)
		return 1
	}
	defer in.Close()

	out := bufio.NewWriter(stdout)
	invalid := 0
	sc := bufio.NewScanner(in)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		qname, err := scoreName(text)
		if err != nil {
			fmt.Fprintf(stderr, "%s:%d: %v\n", name, line, err)
			invalid++
			continue
		}
		r := d.Score(qname)
		verdict := "benign"
		if r.Malicious {
			verdict = "malicious"
		}
		fmt.Fprintf(out, "%s\t%s\t%s", text, strconv.FormatFloat(r.Score, 'f', 4, 64), verdict)
		if *reason {
			fmt.Fprintf(out, "\t%s", r.Reason)
		}
		out.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(stderr, "bulwark intel score: read %s: %v\n", name, err)
		return 1
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintf(stderr, "bulwark intel score: write: %v\n", err)
		return 1
	}
	if invalid > 0 {
		fmt.Fprintf(stderr, "bulwark intel score: skipped %d invalid names\n", invalid)
		return 1
	}
	return 0
}

// openInput opens path, or standard input for "-", and returns the name
// to use in messages.
func openInput(path string) (io.ReadCloser, string, error) {
	if path == "-" {
		return io.NopCloser(os.Stdin), "stdin", nil
	}
	f, err := os.Open(path)
	return f, path, err
}

// scoreName returns the name to score for text: its A-label form when it
// is an internationalised name, as a resolver receives it.
func scoreName(text string) (string, error) {
	name := text
	if strings.IndexFunc(name, func(r rune) bool { return r >= 0x80 }) >= 0 {
		ascii, err := idna.Lookup.ToASCII(strings.TrimSuffix(name, "."))
		if err != nil {
			return "", fmt.Errorf("invalid internationalised name %q: %v", text, err)
		}
		name = ascii
	}
	if _, ok := dns.IsDomainName(name); !ok || strings.IndexFunc(name, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0 {
		return "", fmt.Errorf("invalid name %q: want labels of 1 to 63 bytes, 253 in all, without spaces or control characters", text)
	}
	return name, nil
}
