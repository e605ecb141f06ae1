package tlscert

import (
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// writePair writes a new self-signed certificate for name and its key.
func writePair(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	cert, err := SelfSigned([]string{name}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestSelfSigned(t *testing.T) {
	s, err := Load("", "", []string{"dns.example", "127.0.0.1"}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if !s.SelfSignedInUse() {
		t.Error("SelfSignedInUse is false without files")
	}
	leaf := s.Leaf()
	if err := leaf.VerifyHostname("dns.example"); err != nil {
		t.Errorf("certificate does not cover dns.example: %v", err)
	}
	if err := leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Errorf("certificate does not cover 127.0.0.1: %v", err)
	}
}

func TestReloadOnChange(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writePair(t, dir, "old.example")
	s, err := Load(certFile, keyFile, nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if s.Leaf().VerifyHostname("old.example") != nil {
		t.Fatal("first certificate not in use")
	}
	s.Check()
	if s.Leaf().VerifyHostname("old.example") != nil {
		t.Fatal("an unchanged pair replaced the certificate")
	}

	// A broken certificate file keeps the previous certificate.
	time.Sleep(10 * time.Millisecond)
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Check()
	if s.Leaf().VerifyHostname("old.example") != nil {
		t.Error("a broken file replaced the certificate")
	}

	time.Sleep(10 * time.Millisecond)
	writePair(t, dir, "new.example")
	s.Check()
	if err := s.Leaf().VerifyHostname("new.example"); err != nil {
		t.Errorf("renewed certificate not in use: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load("cert.pem", "", nil, quiet()); err == nil {
		t.Error("a certificate without a key was accepted")
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.pem"), "key.pem", nil, quiet()); err == nil {
		t.Error("a missing certificate file was accepted")
	}
}
