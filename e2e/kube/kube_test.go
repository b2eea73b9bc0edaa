package kube

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"moat.dev/moat/e2e/harness"
)

// The certificates chain to the CA and carry the names the API server and
// the kubelet are reached by, with the right usages.
func TestCertificates(t *testing.T) {
	dir := t.TempDir()
	ca, err := newAuthority("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.write(dir, "ca"); err != nil {
		t.Fatal(err)
	}
	nodeIP := net.ParseIP("192.0.2.7")
	if err := ca.issue(dir, certRequest{name: "kubelet", cn: "node1", server: true, dns: []string{"node1"},
		ips: []net.IP{net.ParseIP("127.0.0.1"), nodeIP}}); err != nil {
		t.Fatal(err)
	}
	if err := ca.issue(dir, certRequest{name: "admin", cn: "kubernetes-admin", orgs: []string{"system:masters"}, client: true}); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	load := func(name string) *x509.Certificate {
		b, err := os.ReadFile(filepath.Join(dir, name+".crt"))
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(b)
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	k := load("kubelet")
	for _, host := range []string{"node1", "127.0.0.1", "192.0.2.7"} {
		if _, err := k.Verify(x509.VerifyOptions{DNSName: host, Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("kubelet serving certificate for %s: %v", host, err)
		}
	}
	if _, err := k.Verify(x509.VerifyOptions{DNSName: "192.0.2.8", Roots: pool}); err == nil {
		t.Error("kubelet certificate valid for an address it does not name")
	}
	a := load("admin")
	if _, err := a.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("admin client certificate: %v", err)
	}
	if !slices.Equal(a.Subject.Organization, []string{"system:masters"}) || a.Subject.CommonName != "kubernetes-admin" {
		t.Errorf("admin subject %v", a.Subject)
	}
	if fi, err := os.Stat(filepath.Join(dir, "admin.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("admin key mode: %v %v", fi.Mode(), err)
	}
	if err := writeServiceAccountKey(dir); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "sa.pub"))
	if blk, _ := pem.Decode(b); blk == nil || blk.Type != "PUBLIC KEY" {
		t.Errorf("sa.pub is not a PEM public key: %q", b)
	}
}

// The front-proxy client certificate is a client certificate named
// front-proxy-client that chains to the front-proxy CA and not to the
// cluster CA, so no cluster client can pass as the front proxy and the
// front proxy cannot log in to the API server itself.
func TestFrontProxyCertificates(t *testing.T) {
	dir := t.TempDir()
	ca, err := newAuthority("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFrontProxy(dir); err != nil {
		t.Fatal(err)
	}
	load := func(name string) *x509.Certificate {
		b, err := os.ReadFile(filepath.Join(dir, name+".crt"))
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(b)
		if blk == nil || blk.Type != "CERTIFICATE" {
			t.Fatalf("%s.crt is not a PEM certificate: %q", name, b)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	fpca := load("front-proxy-ca")
	if !fpca.IsCA || fpca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("front-proxy-ca.crt is not a CA: IsCA %v, key usage %v", fpca.IsCA, fpca.KeyUsage)
	}
	client := load("front-proxy-client")
	if client.Subject.CommonName != "front-proxy-client" {
		t.Errorf("front-proxy client subject %v, want CN front-proxy-client", client.Subject)
	}
	if !slices.Equal(client.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		t.Errorf("front-proxy client extended key usage %v, want client auth only", client.ExtKeyUsage)
	}
	fp := x509.NewCertPool()
	fp.AddCert(fpca)
	if _, err := client.Verify(x509.VerifyOptions{Roots: fp, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("front-proxy client certificate against the front-proxy CA: %v", err)
	}
	cluster := x509.NewCertPool()
	cluster.AddCert(ca.cert)
	if _, err := client.Verify(x509.VerifyOptions{Roots: cluster, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("front-proxy client certificate verifies against the cluster CA")
	}
	for _, k := range []string{"front-proxy-ca.key", "front-proxy-client.key"} {
		fi, err := os.Stat(filepath.Join(dir, k))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", k, fi.Mode().Perm())
		}
	}
}

// The node IP is never loopback (the kubelet refuses it).
func TestPrimaryIP(t *testing.T) {
	ip, err := PrimaryIP()
	if err != nil {
		t.Fatal(err)
	}
	p := net.ParseIP(ip)
	if p == nil || p.IsLoopback() || p.To4() == nil {
		t.Errorf("PrimaryIP() = %q", ip)
	}
}

// A second Lock waits for the first to be released; a context ending
// first makes it give up with an error saying so.
func TestLock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.lock")
	rel, err := Lock(context.Background(), p, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	_, err = Lock(ctx, p, t.Logf)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Lock while held: %v", err)
	}
	got := make(chan error, 1)
	go func() {
		r, err := Lock(context.Background(), p, t.Logf)
		if err == nil {
			r()
		}
		got <- err
	}()
	time.Sleep(200 * time.Millisecond)
	rel()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Lock did not get the released lock")
	}
	b, _ := os.ReadFile(p)
	if strings.TrimSpace(string(b)) == "" {
		t.Error("lock file does not name its holder")
	}
}

// Missing binaries are reported together, as the harness reports its tools.
func TestFindBinariesMissing(t *testing.T) {
	_, err := FindBinaries(t.TempDir())
	var m *harness.MissingToolsError
	if !errors.As(err, &m) || len(m.Missing) != 7 {
		t.Fatalf("FindBinaries(empty) = %v", err)
	}
}
