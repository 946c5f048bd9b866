package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/textproto"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	mail "github.com/wneessen/go-mail"
)

// defaultEmailTimeout bounds one SMTP conversation when the config sets
// none: connecting, TLS, AUTH and the whole message included.
const defaultEmailTimeout = 30 * time.Second

// EmailConfig configures the SMTP sender.
type EmailConfig struct {
	// URL is SMTP_URL: smtp://[user:pass@]host[:port] (port 587 by
	// default, STARTTLS as TLSPolicy says) or smtps://[user:pass@]host[:port]
	// (port 465 by default, implicit TLS). User and password, when present,
	// are used for SMTP AUTH with the first of SCRAM-SHA-256, PLAIN and
	// LOGIN that the server offers; PLAIN and LOGIN reveal the password, so
	// they are only sent over TLS or to a loopback server.
	URL string
	// From is the sender address, "Name <addr@example.com>" or a bare
	// address.
	From string
	// TLSPolicy applies to smtp:// URLs: "mandatory" (STARTTLS or fail),
	// "opportunistic" (STARTTLS when offered; the default) or "none". An
	// smtps:// URL always uses implicit TLS, so only "" or "mandatory" fit
	// it.
	TLSPolicy string
	// Timeout bounds one Send; 0 means 30s. The caller's ctx can only
	// shorten it.
	Timeout time.Duration
	// TLSConfig replaces the default TLS settings (tests use it to trust a
	// self-signed certificate). ServerName defaults to the URL's host.
	TLSConfig *tls.Config
}

// Email sends one message per Send over a fresh SMTP connection. It is
// safe for concurrent use.
type Email struct {
	host      string
	port      int
	user      string
	pass      string
	implicit  bool
	policy    mail.TLSPolicy
	from      string // as given, validated
	msgDomain string // right-hand side for Message-IDs
	timeout   time.Duration
	tlsConfig *tls.Config
}

// EmailMessage is one email to deliver.
type EmailMessage struct {
	To      string
	Subject string
	Text    string // plain-text body; at least one of Text and HTML is required
	HTML    string
	// MessageID is our delivery id. It becomes the Message-ID header
	// (<MessageID@from-domain> unless it already has an @), so a message
	// that a retry sends twice can be recognised as one by the receiver.
	MessageID string
	// Headers are extra header fields, e.g. List-Unsubscribe.
	Headers map[string]string
}

// NewEmail validates cfg and returns a sender. It does not connect.
func NewEmail(cfg EmailConfig) (*Email, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		// url.Parse's error repeats the URL, password included: leave it out.
		return nil, errors.New("SMTP_URL: not a valid URL")
	}
	e := &Email{timeout: cfg.Timeout}
	if e.timeout <= 0 {
		e.timeout = defaultEmailTimeout
	}
	switch u.Scheme {
	case "smtp":
		e.port = 587
	case "smtps":
		e.port = 465
		e.implicit = true
	default:
		return nil, fmt.Errorf("SMTP_URL: scheme must be smtp or smtps, got %q", u.Scheme)
	}
	e.host = u.Hostname()
	if e.host == "" {
		return nil, errors.New("SMTP_URL: missing host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("SMTP_URL: invalid port %q", p)
		}
		e.port = n
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("SMTP_URL: must have no path, query or fragment")
	}
	if u.User != nil {
		e.user = u.User.Username()
		e.pass, _ = u.User.Password()
		if e.user == "" {
			return nil, errors.New("SMTP_URL: credentials have an empty user name")
		}
	}

	switch strings.ToLower(cfg.TLSPolicy) {
	case "", "opportunistic":
		e.policy = mail.TLSOpportunistic
		if e.implicit && cfg.TLSPolicy != "" {
			return nil, errors.New("SMTP_URL: smtps:// always uses TLS; TLS policy opportunistic does not apply")
		}
	case "mandatory":
		e.policy = mail.TLSMandatory
	case "none":
		if e.implicit {
			return nil, errors.New("SMTP_URL: smtps:// always uses TLS; TLS policy none contradicts it")
		}
		e.policy = mail.NoTLS
	default:
		return nil, fmt.Errorf("SMTP TLS policy must be mandatory, opportunistic or none, got %q", cfg.TLSPolicy)
	}

	from, err := netmail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("email From %q: %w", cfg.From, err)
	}
	e.from = cfg.From
	e.msgDomain = from.Address[strings.LastIndexByte(from.Address, '@')+1:]

	if cfg.TLSConfig != nil {
		e.tlsConfig = cfg.TLSConfig.Clone()
	} else {
		e.tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if e.tlsConfig.ServerName == "" {
		e.tlsConfig.ServerName = e.host
	}
	return e, nil
}

// Send delivers m in one SMTP conversation. On success Result has code
// 250 and the server's answer to the message (often its queue id).
//
// Failures are *DeliveryError: an invalid address or header, and any SMTP
// 5xx reply (a rejected recipient, failed authentication), are Permanent;
// 4xx replies, connection and TLS failures and timeouts are retryable.
func (e *Email) Send(ctx context.Context, m EmailMessage) (Result, error) {
	msg, derr := e.buildMessage(m)
	if derr != nil {
		return Result{}, derr
	}

	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	// go-mail applies its timeout as a deadline on the connection; give it
	// what is left of ours so that the caller's deadline holds too.
	remaining := e.timeout
	if dl, ok := ctx.Deadline(); ok {
		remaining = time.Until(dl)
	}
	if remaining <= 0 {
		return Result{}, retryable(0, fmt.Errorf("smtp: %w", context.DeadlineExceeded))
	}

	opts := []mail.Option{
		mail.WithPort(e.port),
		mail.WithTimeout(remaining),
		mail.WithTLSConfig(e.tlsConfig),
		mail.WithDialContextFunc(e.dialer(ctx)),
		// We have just connected: a NOOP round trip proves nothing.
		mail.WithoutNoop(),
	}
	if e.implicit {
		opts = append(opts, mail.WithSSL())
	} else {
		opts = append(opts, mail.WithTLSPolicy(e.policy))
	}
	if e.user != "" {
		opts = append(opts,
			mail.WithUsername(e.user), mail.WithPassword(e.pass),
			mail.WithOpportunisticSMTPAuth(mail.SMTPAuthSCRAMSHA256, mail.SMTPAuthPlain, mail.SMTPAuthLogin))
	}
	client, err := mail.NewClient(e.host, opts...)
	if err != nil {
		// Only a programming error gets here: NewEmail validated the inputs.
		return Result{}, permanent(0, fmt.Errorf("smtp: configure client: %w", err))
	}

	err = client.DialAndSendWithContext(ctx, msg)
	// Once the server has accepted the message it is delivered, whatever
	// goes wrong afterwards (RSET, QUIT): reporting a failure would make
	// the worker send it again.
	if msg.IsDelivered() {
		return Result{StatusCode: 250, Response: responseText([]byte(msg.ServerResponse()))}, nil
	}
	if err == nil {
		err = errors.New("message not accepted, no error reported")
	}
	err = withDeadline(ctx, err)
	de := classifySMTP(err)
	return Result{StatusCode: de.StatusCode, Response: responseText([]byte(err.Error()))}, de
}

// withDeadline makes err wrap ctx's error when ctx ended the conversation,
// so that callers can tell our deadline from a failing server with
// errors.Is. ctx.Err alone is not enough: go-mail enforces the deadline
// as a socket deadline, and the poller can wake the reader with an i/o
// timeout before the context's timer has marked ctx done. go-mail's
// SendError does not unwrap, so the socket error cannot be inspected
// either; but every socket deadline is set from what was left of ctx's
// deadline, so a failure at or after that deadline is ours.
func withDeadline(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%w: %w", ctxErr, err)
	}
	// os.ErrDeadlineExceeded is what a socket deadline fails with, where
	// an error chain keeps it (dialling does).
	if dl, ok := ctx.Deadline(); (ok && !time.Now().Before(dl)) || errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	return err
}

// dialer connects to the server and ties the connection to ctx: go-mail
// honours ctx only while dialling, so without this a cancelled worker
// would keep talking to a slow server until the connection deadline.
func (e *Email) dialer(ctx context.Context) mail.DialContextFunc {
	return func(dialCtx context.Context, network, addr string) (net.Conn, error) {
		var conn net.Conn
		var err error
		if e.implicit {
			d := &tls.Dialer{Config: e.tlsConfig}
			conn, err = d.DialContext(dialCtx, network, addr)
		} else {
			var d net.Dialer
			conn, err = d.DialContext(dialCtx, network, addr)
		}
		if err != nil {
			return nil, err
		}
		// Send cancels ctx when it returns, so this also closes a
		// connection go-mail left open; closing twice is harmless.
		context.AfterFunc(ctx, func() { _ = conn.Close() })
		return conn, nil
	}
}

// buildMessage validates m and turns it into a go-mail message. Every
// problem it finds is in the message itself, so it is Permanent.
func (e *Email) buildMessage(m EmailMessage) (*mail.Msg, *DeliveryError) {
	if _, err := netmail.ParseAddress(m.To); err != nil {
		return nil, permanent(0, fmt.Errorf("smtp: invalid recipient %q: %w", m.To, err))
	}
	if m.Text == "" && m.HTML == "" {
		return nil, permanent(0, errors.New("smtp: message has neither text nor HTML body"))
	}
	msgID, err := e.messageID(m.MessageID)
	if err != nil {
		return nil, permanent(0, err)
	}

	msg := mail.NewMsg()
	if err := msg.From(e.from); err != nil {
		return nil, permanent(0, fmt.Errorf("smtp: sender: %w", err))
	}
	if err := msg.To(m.To); err != nil {
		return nil, permanent(0, fmt.Errorf("smtp: invalid recipient %q: %w", m.To, err))
	}
	msg.Subject(oneLine(m.Subject))
	msg.SetMessageIDWithValue(msgID)
	msg.SetDate()
	msg.SetUserAgent("Spillway")
	// RFC 3834: this is a machine's notice, so vacation responders and the
	// like should not answer it.
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	for k, v := range m.Headers {
		if err := checkHeader(k, v); err != nil {
			return nil, permanent(0, err)
		}
		msg.SetGenHeader(mail.Header(textproto.CanonicalMIMEHeaderKey(k)), v)
	}

	switch {
	case m.Text != "" && m.HTML != "":
		msg.SetBodyString(mail.TypeTextPlain, m.Text)
		msg.AddAlternativeString(mail.TypeTextHTML, m.HTML)
	case m.Text != "":
		msg.SetBodyString(mail.TypeTextPlain, m.Text)
	default:
		msg.SetBodyString(mail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

// messageID turns a delivery id into the value inside Message-ID's angle
// brackets. The characters allowed are those of an RFC 5322 dot-atom, so
// that no id can break the header.
func (e *Email) messageID(id string) (string, error) {
	if id == "" {
		return "", errors.New("smtp: message has no MessageID (the delivery id)")
	}
	if !strings.Contains(id, "@") {
		id += "@" + e.msgDomain
	}
	left, right, _ := strings.Cut(id, "@")
	if !isDotAtom(left) || !isDotAtom(right) {
		return "", fmt.Errorf("smtp: MessageID %q is not of the form id@domain", id)
	}
	return id, nil
}

// isDotAtom reports whether s is an RFC 5322 dot-atom-text.
func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-/=?^_`{|}~.", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// reservedHeaders are set by Send itself; letting Headers override them
// would defeat the validation above.
var reservedHeaders = map[string]bool{
	"From": true, "To": true, "Cc": true, "Bcc": true, "Subject": true, "Message-Id": true,
	"Date": true, "Sender": true, "Content-Type": true,
	"Content-Transfer-Encoding": true, "Mime-Version": true,
}

// checkHeader refuses a header field that could inject another one or
// override what Send sets.
func checkHeader(name, value string) error {
	if name == "" {
		return errors.New("smtp: empty header name")
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return fmt.Errorf("smtp: invalid header name %q", name)
		}
	}
	if reservedHeaders[textproto.CanonicalMIMEHeaderKey(name)] {
		return fmt.Errorf("smtp: header %s is set by the sender, not by Headers", name)
	}
	if strings.ContainsAny(value, "\r\n\x00") {
		return fmt.Errorf("smtp: header %s: value contains a line break or NUL", name)
	}
	return nil
}

// classifySMTP decides whether a failed SMTP conversation is worth
// retrying. The reply code decides when there is one (RFC 5321 §4.2.1: 5xx
// is a permanent failure, 4xx a transient one); without a code, a problem
// go-mail found in the message's addresses is permanent and anything else
// (network, TLS, timeout) is retryable.
func classifySMTP(err error) *DeliveryError {
	code := 0
	var se *mail.SendError
	var te *textproto.Error
	switch {
	case errors.As(err, &se):
		code = se.ErrorCode()
		if code == 0 && (se.Reason == mail.ErrGetSender || se.Reason == mail.ErrGetRcpts || se.Reason == mail.ErrNoUnencoded) {
			return permanent(0, fmt.Errorf("smtp: %w", err))
		}
	case errors.As(err, &te):
		code = te.Code
	}
	if code >= 500 && code < 600 {
		return permanent(code, fmt.Errorf("smtp: %w", err))
	}
	return retryable(code, fmt.Errorf("smtp: %w", err))
}
