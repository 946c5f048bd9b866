package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/jobs/notify/notifytest"
)

// parsedMail is a notifytest.SMTPMessage message taken apart for assertions.
type parsedMail struct {
	header netmail.Header
	parts  map[string]string // media type → decoded body
}

func parseMail(t *testing.T, data []byte) parsedMail {
	t.Helper()
	m, err := netmail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("read message: %v", err)
	}
	pm := parsedMail{header: m.Header, parts: map[string]string{}}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("content type: %v", err)
	}
	if !strings.HasPrefix(mt, "multipart/") {
		body, _ := io.ReadAll(m.Body)
		pm.parts[mt] = string(body)
		return pm
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("next part: %v", err)
		}
		pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		// multipart.Reader undoes quoted-printable by itself.
		body, err := io.ReadAll(p)
		if err != nil {
			t.Fatalf("read part: %v", err)
		}
		pm.parts[pt] = string(body)
	}
	return pm
}

func decodedSubject(t *testing.T, h netmail.Header) string {
	t.Helper()
	s, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if err != nil {
		t.Fatalf("subject: %v", err)
	}
	return s
}

func TestEmailSendsRenderedPayment(t *testing.T) {
	t.Parallel()
	be := &notifytest.SMTPBackend{}
	addr := notifytest.StartSMTP(t, be, notifytest.PlainSMTP, tls.Certificate{})
	e, err := NewEmail(EmailConfig{URL: "smtp://" + addr, From: "Spillway <billing@shop.example>", TLSPolicy: "none"})
	if err != nil {
		t.Fatal(err)
	}
	subject, text, html, err := RenderPaymentEmail(PaymentNotice{
		OperationID: "7f8d6829-0000-4000-8000-000000000001",
		Status:      "succeeded",
		Amount:      1999,
		Currency:    "usd",
		Description: `<script>alert("x")</script> & co`,
		StatusURL:   "http://127.0.0.1:8080/operations/7f8d6829",
	})
	if err != nil {
		t.Fatal(err)
	}

	res, err := e.Send(context.Background(), EmailMessage{
		To: "Ann <ann@customer.example>", Subject: subject, Text: text, HTML: html,
		MessageID: "deliv-1",
		Headers:   map[string]string{"X-Spillway-Operation": "7f8d6829"},
	})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if res.StatusCode != 250 {
		t.Errorf("StatusCode = %d, want 250", res.StatusCode)
	}

	msgs := be.Messages()
	if len(msgs) != 1 {
		t.Fatalf("server got %d messages, want 1", len(msgs))
	}
	got := msgs[0]
	if got.From != "billing@shop.example" || len(got.To) != 1 || got.To[0] != "ann@customer.example" {
		t.Errorf("envelope = %q → %q", got.From, got.To)
	}
	pm := parseMail(t, got.Data)
	for header, want := range map[string]string{
		"Message-Id":           "<deliv-1@shop.example>",
		"Auto-Submitted":       "auto-generated",
		"X-Spillway-Operation": "7f8d6829",
	} {
		if v := pm.header.Get(header); v != want {
			t.Errorf("%s = %q, want %q", header, v, want)
		}
	}
	if from, _ := pm.header.AddressList("From"); len(from) != 1 || from[0].Address != "billing@shop.example" {
		t.Errorf("From = %v", from)
	}
	if to, _ := pm.header.AddressList("To"); len(to) != 1 || to[0].Address != "ann@customer.example" {
		t.Errorf("To = %v", to)
	}
	if s := decodedSubject(t, pm.header); s != "Payment succeeded: USD 19.99" {
		t.Errorf("Subject = %q", s)
	}

	plain, htmlPart := pm.parts["text/plain"], pm.parts["text/html"]
	if !strings.Contains(plain, "USD 19.99") || !strings.Contains(plain, `<script>alert("x")</script> & co`) {
		t.Errorf("text part lacks amount or description:\n%s", plain)
	}
	if !strings.Contains(htmlPart, "USD 19.99") || !strings.Contains(htmlPart, "http://127.0.0.1:8080/operations/7f8d6829") {
		t.Errorf("HTML part lacks amount or link:\n%s", htmlPart)
	}
	if strings.Contains(htmlPart, "<script>") {
		t.Errorf("HTML part carries the description's <script> unescaped:\n%s", htmlPart)
	}
	if !strings.Contains(htmlPart, "&lt;script&gt;") {
		t.Errorf("HTML part lacks the escaped description:\n%s", htmlPart)
	}
}

func TestEmailAuthAndTLS(t *testing.T) {
	t.Parallel()
	cert, pool := notifytest.TestCert(t)
	trust := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}

	tests := []struct {
		name      string
		mode      notifytest.SMTPMode
		scheme    string
		policy    string
		userinfo  string
		wantErr   bool
		permanent bool
		wantTLS   bool
	}{
		{name: "plain auth on loopback", mode: notifytest.PlainSMTP, scheme: "smtp", userinfo: "mailer:s3cret%2Fx@", wantTLS: false},
		{name: "wrong password", mode: notifytest.PlainSMTP, scheme: "smtp", userinfo: "mailer:nope@", wantErr: true, permanent: true},
		{name: "no credentials where required", mode: notifytest.PlainSMTP, scheme: "smtp", wantErr: true, permanent: true},
		{name: "starttls mandatory", mode: notifytest.StartTLSSMTP, scheme: "smtp", policy: "mandatory", userinfo: "mailer:s3cret%2Fx@", wantTLS: true},
		{name: "starttls opportunistic", mode: notifytest.StartTLSSMTP, scheme: "smtp", userinfo: "mailer:s3cret%2Fx@", wantTLS: true},
		{name: "implicit tls", mode: notifytest.ImplicitSMTP, scheme: "smtps", userinfo: "mailer:s3cret%2Fx@", wantTLS: true},
		{name: "mandatory but not offered", mode: notifytest.PlainSMTP, scheme: "smtp", policy: "mandatory", userinfo: "mailer:s3cret%2Fx@", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			be := &notifytest.SMTPBackend{User: "mailer", Pass: "s3cret/x"}
			addr := notifytest.StartSMTP(t, be, tt.mode, cert)
			e, err := NewEmail(EmailConfig{
				URL: tt.scheme + "://" + tt.userinfo + addr, From: "billing@shop.example",
				TLSPolicy: tt.policy, TLSConfig: trust, Timeout: 10 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.Send(context.Background(), EmailMessage{
				To: "ann@customer.example", Subject: "hi", Text: "hello", MessageID: "d-" + strings.ReplaceAll(tt.name, " ", "-"),
			})
			if tt.wantErr {
				var de *DeliveryError
				if !errors.As(err, &de) {
					t.Fatalf("err = %v, want a *DeliveryError", err)
				}
				if de.Permanent != tt.permanent {
					t.Errorf("Permanent = %v, want %v (%v)", de.Permanent, tt.permanent, err)
				}
				if n := len(be.Messages()); n != 0 {
					t.Errorf("server got %d messages, want none", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			msgs := be.Messages()
			if len(msgs) != 1 {
				t.Fatalf("server got %d messages, want 1", len(msgs))
			}
			if msgs[0].AuthUser != "mailer" || msgs[0].TLS != tt.wantTLS {
				t.Errorf("auth user %q, TLS %v; want mailer, %v", msgs[0].AuthUser, msgs[0].TLS, tt.wantTLS)
			}
		})
	}
}

func TestEmailFailureClassification(t *testing.T) {
	t.Parallel()
	be := &notifytest.SMTPBackend{RcptErr: map[string]*smtp.SMTPError{
		"gone@customer.example": {Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"},
		"full@customer.example": {Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"},
	}}
	addr := notifytest.StartSMTP(t, be, notifytest.PlainSMTP, tls.Certificate{})

	// Held for the test, so no other listener can be given the port.
	closedAddr := apptest.RefusingAddr(t)

	tests := []struct {
		name       string
		addr       string
		msg        EmailMessage
		permanent  bool
		statusCode int
	}{
		{name: "550 rejection", addr: addr, msg: EmailMessage{To: "gone@customer.example"}, permanent: true, statusCode: 550},
		{name: "452 is transient", addr: addr, msg: EmailMessage{To: "full@customer.example"}, statusCode: 452},
		{name: "connection refused", addr: closedAddr, msg: EmailMessage{To: "ann@customer.example"}},
		{name: "bad address", addr: closedAddr, msg: EmailMessage{To: "not an address"}, permanent: true},
		{name: "no body", addr: closedAddr, msg: EmailMessage{To: "ann@customer.example", Text: "-"}, permanent: true},
		{name: "no message id", addr: closedAddr, msg: EmailMessage{To: "ann@customer.example", MessageID: "-"}, permanent: true},
		{name: "header injection", addr: closedAddr, msg: EmailMessage{To: "ann@customer.example", Headers: map[string]string{"X-A": "1\r\nBcc: x@y.example"}}, permanent: true},
		{name: "reserved header", addr: closedAddr, msg: EmailMessage{To: "ann@customer.example", Headers: map[string]string{"bcc": "x@y.example"}}, permanent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := NewEmail(EmailConfig{URL: "smtp://" + tt.addr, From: "billing@shop.example", Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			m := tt.msg
			switch m.Text {
			case "":
				m.Text = "hello"
			case "-":
				m.Text = ""
			}
			switch m.MessageID {
			case "":
				m.MessageID = "d-1"
			case "-":
				m.MessageID = ""
			}
			res, err := e.Send(context.Background(), m)
			var de *DeliveryError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want a *DeliveryError", err)
			}
			if de.Permanent != tt.permanent || de.StatusCode != tt.statusCode || res.StatusCode != tt.statusCode {
				t.Errorf("Permanent %v, StatusCode %d (result %d); want %v, %d\n%v",
					de.Permanent, de.StatusCode, res.StatusCode, tt.permanent, tt.statusCode, err)
			}
		})
	}
	if n := len(be.Messages()); n != 0 {
		t.Errorf("server got %d messages, want none", n)
	}
}

// lateDeadline is a caller's context with a deadline that it does not yet
// report through Done or Err. It pins down the moment
// TestEmailHonoursTimeout once failed in by chance: the socket deadline
// go-mail set from the context's deadline has fired, but the context's
// timer has not run yet, so ctx.Err() is still nil.
type lateDeadline struct {
	context.Context
	at time.Time
}

func (c lateDeadline) Deadline() (time.Time, bool) { return c.at, true }

// The server reads the whole message and then withholds its reply to DATA
// until the test ends, so only the deadline can end Send. Whichever of the
// socket deadline and the context's timer fires first, the error is
// retryable and wraps context.DeadlineExceeded.
func TestEmailHonoursTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	tests := []struct {
		name    string
		timeout time.Duration // EmailConfig.Timeout
		ctx     func(t *testing.T) context.Context
	}{
		{name: "sender timeout", timeout: timeout, ctx: func(*testing.T) context.Context { return context.Background() }},
		{name: "caller deadline", ctx: func(t *testing.T) context.Context {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			t.Cleanup(cancel)
			return ctx
		}},
		{name: "socket deadline before context timer", ctx: func(*testing.T) context.Context {
			return lateDeadline{Context: context.Background(), at: time.Now().Add(timeout)}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			be := &notifytest.SMTPBackend{Stall: make(chan struct{})}
			t.Cleanup(func() { close(be.Stall) })
			addr := notifytest.StartSMTP(t, be, notifytest.PlainSMTP, tls.Certificate{})
			e, err := NewEmail(EmailConfig{URL: "smtp://" + addr, From: "billing@shop.example", Timeout: tt.timeout})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			ctx := tt.ctx(t)
			done := make(chan error, 1)
			go func() {
				_, err := e.Send(ctx, EmailMessage{To: "ann@customer.example", Text: "x", MessageID: "d-slow"})
				done <- err
			}()
			// The stall lasts until the test ends, so Send returning at all
			// shows the deadline ended it; this wait only stops a broken
			// Send from hanging the run.
			select {
			case err = <-done:
			case <-time.After(time.Minute):
				t.Fatalf("Send still running a minute after its %v deadline", timeout)
			}
			d := time.Since(start)
			var de *DeliveryError
			if !errors.As(err, &de) || de.Permanent {
				t.Fatalf("err = %v, want a retryable *DeliveryError", err)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v, want it to wrap context.DeadlineExceeded", err)
			}
			if d < timeout {
				t.Errorf("Send gave up after %v, before its %v deadline", d, timeout)
			}
			// A speed bound, kept on purpose: ten times the timeout is far
			// beyond scheduling delay, so exceeding it means the deadline
			// was not applied.
			if d > 10*timeout {
				t.Errorf("Send took %v with a %v timeout", d, timeout)
			}
			if n := len(be.Messages()); n != 0 {
				t.Errorf("server recorded %d messages while stalled, want none", n)
			}
		})
	}
}

func TestNewEmailValidates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     EmailConfig
		wantErr string
	}{
		{name: "ok smtp", cfg: EmailConfig{URL: "smtp://u:p@127.0.0.1:2525", From: "a@b.example"}},
		{name: "ok smtps", cfg: EmailConfig{URL: "smtps://127.0.0.1", From: "A <a@b.example>", TLSPolicy: "mandatory"}},
		{name: "empty", cfg: EmailConfig{From: "a@b.example"}, wantErr: "SMTP_URL"},
		{name: "bad scheme", cfg: EmailConfig{URL: "http://127.0.0.1", From: "a@b.example"}, wantErr: "SMTP_URL"},
		{name: "no host", cfg: EmailConfig{URL: "smtp://:25", From: "a@b.example"}, wantErr: "SMTP_URL"},
		{name: "bad port", cfg: EmailConfig{URL: "smtp://127.0.0.1:99999", From: "a@b.example"}, wantErr: "SMTP_URL"},
		{name: "path", cfg: EmailConfig{URL: "smtp://127.0.0.1/x", From: "a@b.example"}, wantErr: "SMTP_URL"},
		{name: "unparsable keeps password out", cfg: EmailConfig{URL: "smtp://u:hunter2@127.0.0.1:%zz", From: "a@b.example"}, wantErr: "SMTP_URL"},
		{name: "bad policy", cfg: EmailConfig{URL: "smtp://127.0.0.1", From: "a@b.example", TLSPolicy: "sometimes"}, wantErr: "TLS policy"},
		{name: "smtps without tls", cfg: EmailConfig{URL: "smtps://127.0.0.1", From: "a@b.example", TLSPolicy: "none"}, wantErr: "SMTP_URL"},
		{name: "bad from", cfg: EmailConfig{URL: "smtp://127.0.0.1", From: "nobody"}, wantErr: "From"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewEmail(tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("NewEmail: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}

// The TLS config given is cloned, so Send never mutates the caller's.
func TestNewEmailClonesTLSConfig(t *testing.T) {
	t.Parallel()
	cfg := &tls.Config{RootCAs: x509.NewCertPool(), MinVersion: tls.VersionTLS12}
	if _, err := NewEmail(EmailConfig{URL: "smtps://127.0.0.1", From: "a@b.example", TLSConfig: cfg}); err != nil {
		t.Fatal(err)
	}
	if cfg.ServerName != "" {
		t.Errorf("caller's TLS config was changed: ServerName %q", cfg.ServerName)
	}
}
