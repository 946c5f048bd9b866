// Package browsertest starts the headless Chromium the web end-to-end
// tests drive with chromedp: Debian's chromium, which
// scripts/setup-browser.sh installs, with a throwaway profile.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Chromium finds Debian's chromium, which scripts/setup-browser.sh
// installs, or the binary CHROMIUM names. Its absence fails the test: CI
// installs it, and a skipped end-to-end test would hide a broken UI.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Fatal("chromium is not installed (looked for /usr/bin/chromium): run scripts/setup-browser.sh as root " +
		"(make setup does), or set CHROMIUM to a Chromium binary")
	return ""
}

// Start starts a headless Chromium for t, with its profile in a temporary
// directory (nothing from the browser is kept), and returns the context
// of its first tab; the browser ends with t. The browser lives as long as
// the returned context: a test gives each later step a deadline of its
// own, on a context derived from it.
func Start(t testing.TB) context.Context {
	t.Helper()
	exe := Chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], // headless, no first run, no sync, …
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(cancelBrowser)
	began := time.Now()
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start %s: %v", exe, err)
	}
	t.Logf("browser started in %s", time.Since(began).Round(time.Millisecond))
	return bctx
}
