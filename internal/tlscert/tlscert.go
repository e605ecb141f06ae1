// Package tlscert provides the certificate of the encrypted DNS listeners.
// A certificate and key read from files are read again when either file
// changes, so that a renewed certificate applies to new handshakes without
// a restart, while open connections keep theirs. Without files, a
// self-signed certificate is made at start, for labs and local use.
package tlscert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Source supplies the current certificate. It is safe for concurrent use.
type Source struct {
	certFile, keyFile string
	log               *slog.Logger

	cert atomic.Pointer[tls.Certificate]

	mu                sync.Mutex
	certMod, keyMod   time.Time
	certSize, keySize int64
	lastErr           string
	selfSigned        bool
}

// Load returns a Source for the certificate in certFile and its key in
// keyFile. When both are empty, it makes a self-signed certificate for
// names and addresses, valid for a year, and logs that it did.
func Load(certFile, keyFile string, names []string, log *slog.Logger) (*Source, error) {
	s := &Source{certFile: certFile, keyFile: keyFile, log: log.With("component", "tls")}
	if certFile == "" && keyFile == "" {
		cert, err := SelfSigned(names, time.Now())
		if err != nil {
			return nil, err
		}
		s.cert.Store(cert)
		s.selfSigned = true
		s.log.Warn("no TLS certificate configured: using a self-signed certificate made at start; clients that verify certificates will reject it", "names", names)
		return s, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("TLS needs both a certificate file and a key file")
	}
	if err := s.reload(true); err != nil {
		return nil, err
	}
	return s, nil
}

// SelfSigned makes a self-signed ECDSA P-256 certificate for names, which
// may hold DNS names and IP addresses, valid from an hour before now for a
// year.
func SelfSigned(names []string, now time.Time) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("make TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, fmt.Errorf("make certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Bulwark self-signed"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if n != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("make self-signed certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// SelfSignedInUse reports whether the Source made its own certificate.
func (s *Source) SelfSignedInUse() bool { return s.selfSigned }

// Certificate returns the current certificate, for tls.Config.
func (s *Source) Certificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cert.Load(), nil
}

// Leaf returns the parsed current certificate.
func (s *Source) Leaf() *x509.Certificate { return s.cert.Load().Leaf }

// Check reads the files again when either changed since the last read. A
// pair that fails to load is logged, once per distinct error, and the
// previous certificate stays in use.
func (s *Source) Check() {
	if s.selfSigned {
		return
	}
	if err := s.reload(false); err != nil {
		s.mu.Lock()
		report := err.Error() != s.lastErr
		s.lastErr = err.Error()
		s.mu.Unlock()
		if report {
			s.log.Error("cannot load the new TLS certificate; keeping the previous one", "cert_file", s.certFile, "key_file", s.keyFile, "error", err)
		}
	}
}

// Watch calls Check every interval until stop is closed.
func (s *Source) Watch(interval time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.Check()
		}
	}
}

func (s *Source) reload(force bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ci, err := os.Stat(s.certFile)
	if err != nil {
		return fmt.Errorf("TLS certificate file: %w", err)
	}
	ki, err := os.Stat(s.keyFile)
	if err != nil {
		return fmt.Errorf("TLS key file: %w", err)
	}
	same := ci.ModTime().Equal(s.certMod) && ki.ModTime().Equal(s.keyMod) &&
		ci.Size() == s.certSize && ki.Size() == s.keySize
	if same && !force {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return fmt.Errorf("load TLS certificate %s and key %s: %w", s.certFile, s.keyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fmt.Errorf("parse TLS certificate %s: %w", s.certFile, err)
		}
	}
	s.certMod, s.keyMod, s.certSize, s.keySize = ci.ModTime(), ki.ModTime(), ci.Size(), ki.Size()
	s.lastErr = ""
	s.cert.Store(&cert)
	if !force {
		s.log.Info("TLS certificate reloaded", "cert_file", s.certFile, "not_after", cert.Leaf.NotAfter)
	}
	return nil
}

// Config returns a server TLS configuration that takes its certificate
// from s, accepts TLS 1.2 and later, and offers the protocols in alpn.
func (s *Source) Config(alpn ...string) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: s.Certificate,
		NextProtos:     alpn,
	}
}
