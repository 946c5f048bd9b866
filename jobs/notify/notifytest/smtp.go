// Package notifytest runs real receivers for notification tests on
// loopback: an SMTP server (emersion/go-smtp) that keeps what it receives.
package notifytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTPMessage is one message as the test SMTP server got it.
type SMTPMessage struct {
	From     string
	To       []string
	Data     []byte
	AuthUser string
	TLS      bool
}

// SMTPBackend is a go-smtp backend that keeps what it receives and can be
// told to require AUTH, refuse recipients or stall.
type SMTPBackend struct {
	User, Pass string                     // AUTH PLAIN required when User != ""
	RcptErr    map[string]*smtp.SMTPError // refuse these recipients
	Stall      chan struct{}              // Data blocks until closed, when set

	mu   sync.Mutex
	msgs []SMTPMessage
}

func (b *SMTPBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &smtpSession{b: b, tls: isTLS}, nil
}

// Messages returns what arrived so far.
func (b *SMTPBackend) Messages() []SMTPMessage {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]SMTPMessage(nil), b.msgs...)
}

type smtpSession struct {
	b        *SMTPBackend
	tls      bool
	authUser string
	cur      SMTPMessage
}

func (s *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if s.b.User == "" || user != s.b.User || pass != s.b.Pass {
			return smtp.ErrAuthFailed // 535, as real servers answer bad credentials
		}
		s.authUser = user
		return nil
	}), nil
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.b.User != "" && s.authUser == "" {
		return smtp.ErrAuthRequired
	}
	s.cur = SMTPMessage{From: from, AuthUser: s.authUser, TLS: s.tls}
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if e, ok := s.b.RcptErr[to]; ok {
		return e
	}
	s.cur.To = append(s.cur.To, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.b.Stall != nil {
		<-s.b.Stall
	}
	s.cur.Data = data
	s.b.mu.Lock()
	s.b.msgs = append(s.b.msgs, s.cur)
	s.b.mu.Unlock()
	return nil
}

func (s *smtpSession) Reset()        { s.cur = SMTPMessage{} }
func (s *smtpSession) Logout() error { return nil }

// SMTPMode says how the test server speaks TLS.
type SMTPMode int

const (
	PlainSMTP    SMTPMode = iota // no TLS at all
	StartTLSSMTP                 // offers STARTTLS
	ImplicitSMTP                 // TLS from the first byte (smtps)
)

// StartSMTP serves be on a loopback port and returns its address. The
// server stops when the test ends.
func StartSMTP(t testing.TB, be *SMTPBackend, mode SMTPMode, cert tls.Certificate) string {
	t.Helper()
	srv := smtp.NewServer(be)
	srv.Domain = "127.0.0.1"
	// Only a guard against a client that vanished: a slow, loaded client
	// must never be cut off mid-test.
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.ErrorLog = discardLogger{}
	// Loopback only; go-mail still refuses PLAIN without TLS except to a
	// loopback server, which is what lets the plaintext tests use AUTH.
	srv.AllowInsecureAuth = true

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	switch mode {
	case StartTLSSMTP:
		srv.TLSConfig = tlsCfg
	case ImplicitSMTP:
		ln = tls.NewListener(ln, tlsCfg)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}

// TestCert makes a self-signed certificate for 127.0.0.1 and a pool that
// trusts it.
func TestCert(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "spillway test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
