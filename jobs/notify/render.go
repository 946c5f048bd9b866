package notify

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/spillway/spillway/app"
)

// PaymentNotice is what a customer is told about one payment operation.
type PaymentNotice struct {
	OperationID string
	// Status is the operation's status as the API names it (queued,
	// processing, succeeded, declined, failed, cancelled).
	Status string
	// Amount is in minor units of Currency, as the API takes it.
	Amount      int64
	Currency    string
	Description string // customer-supplied: escaped in HTML, kept out of SMS
	StatusURL   string
	CompletedAt time.Time // zero when not completed
}

//go:embed templates/*.tmpl
var templateFS embed.FS

// Parsed once: a broken template is a build defect, so failing at package
// load (where every test notices) beats failing at the first delivery.
var (
	subjectTmpl = texttemplate.Must(texttemplate.ParseFS(templateFS, "templates/payment_subject.txt.tmpl"))
	textTmpl    = texttemplate.Must(texttemplate.ParseFS(templateFS, "templates/payment.txt.tmpl"))
	// html/template, not text/template: Description comes from whoever
	// called the API and must not become markup in someone's mail client.
	htmlTmpl = htmltemplate.Must(htmltemplate.ParseFS(templateFS, "templates/payment.html.tmpl"))
)

// statusWords says each status in plain words: a title, and the end of
// the sentence "Your payment of USD 19.99 …".
var statusWords = map[string]struct{ title, phrase string }{
	"queued":     {"Payment received", "is queued for processing"},
	"processing": {"Payment processing", "is being processed"},
	"succeeded":  {"Payment succeeded", "succeeded"},
	"declined":   {"Payment declined", "was declined"},
	"failed":     {"Payment failed", "could not be completed"},
	"cancelled":  {"Payment cancelled", "was cancelled"},
}

// paymentView is the data every payment template sees: all of it already
// formatted, so the templates hold no logic beyond presence checks.
type paymentView struct {
	Title, Phrase, Amount, Description, OperationID, StatusURL, CompletedAt string
}

func newPaymentView(n PaymentNotice) (paymentView, error) {
	if strings.TrimSpace(n.Currency) == "" {
		return paymentView{}, errors.New("notify: payment notice has no currency")
	}
	words, ok := statusWords[strings.ToLower(n.Status)]
	if !ok {
		// A status added later still reads sensibly instead of failing
		// the delivery.
		words.title = "Payment update"
		words.phrase = "is now " + oneLine(n.Status)
	}
	v := paymentView{
		Title:       words.title,
		Phrase:      words.phrase,
		Amount:      app.FormatAmount(n.Amount, n.Currency),
		Description: strings.TrimSpace(n.Description),
		OperationID: n.OperationID,
		StatusURL:   n.StatusURL,
	}
	if !n.CompletedAt.IsZero() {
		v.CompletedAt = n.CompletedAt.UTC().Format("2 January 2006, 15:04 UTC")
	}
	return v, nil
}

// RenderPaymentEmail renders the subject, plain-text body and HTML body of
// the email about one payment. The HTML body escapes everything it shows.
func RenderPaymentEmail(n PaymentNotice) (subject, text, html string, err error) {
	v, err := newPaymentView(n)
	if err != nil {
		return "", "", "", err
	}
	var sb, tb, hb bytes.Buffer
	if err := subjectTmpl.Execute(&sb, v); err != nil {
		return "", "", "", fmt.Errorf("notify: render subject: %w", err)
	}
	if err := textTmpl.Execute(&tb, v); err != nil {
		return "", "", "", fmt.Errorf("notify: render text body: %w", err)
	}
	if err := htmlTmpl.Execute(&hb, v); err != nil {
		return "", "", "", fmt.Errorf("notify: render html body: %w", err)
	}
	// A subject is one header line whatever the template's trailing
	// newline or the data contain.
	return oneLine(sb.String()), tb.String(), hb.String(), nil
}

// RenderPaymentSMS renders the text message about one payment: status,
// amount and link, within one 160-character GSM segment unless the link
// itself is long. The description is left out: it is free text of unknown
// length and alphabet, and one non-GSM character would cut every segment
// to 70 characters.
func RenderPaymentSMS(n PaymentNotice) string {
	words, ok := statusWords[strings.ToLower(n.Status)]
	if !ok {
		words.phrase = "is now " + oneLine(n.Status)
	}
	msg := fmt.Sprintf("Your payment of %s %s.", app.FormatAmount(n.Amount, n.Currency), words.phrase)
	if n.StatusURL != "" {
		msg += " Details: " + n.StatusURL
	}
	return msg
}

// oneLine collapses runs of whitespace (newlines included) to one space.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
