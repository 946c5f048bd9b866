package sim

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/spillway/spillway/app"
)

// Listing limits: the default keeps an unqualified request cheap, the
// maximum bounds one answer to a few hundred KiB.
const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

// listQuery is a validated GET /charges query.
type listQuery struct {
	createdAfter time.Time // zero → from the first charge
	limit        int       // 1..maxListLimit
	after        string    // "" → first page; else the id of the last charge already seen
}

// parseListQuery validates the raw query of GET /charges. Every problem is
// reported at once. Unknown and repeated parameters are refused: on a
// listing that drives a money-moving sweep, a misspelt "created_afer"
// silently listing everything is worse than an error.
func parseListQuery(raw string) (listQuery, error) {
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return listQuery{}, fmt.Errorf("malformed query: %w", err)
	}
	q := listQuery{limit: defaultListLimit}
	var errs []error
	// Sorted so the errors come in a stable order.
	for _, name := range slices.Sorted(maps.Keys(vals)) {
		vs := vals[name]
		if len(vs) != 1 {
			errs = append(errs, fmt.Errorf("%s must be given at most once", strconv.Quote(name)))
			continue
		}
		v := vs[0]
		switch name {
		case "created_after":
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				errs = append(errs, fmt.Errorf("created_after must be an RFC 3339 time, got %q", clip(v)))
				continue
			}
			q.createdAfter = t
		case "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxListLimit || !allDigits(v) {
				errs = append(errs, fmt.Errorf("limit must be an integer from 1 to %d, got %q", maxListLimit, clip(v)))
				continue
			}
			q.limit = n
		case "after":
			// Empty means "first page", so a client may pass back an empty
			// next as it is.
			if len(v) > maxKeyLen {
				errs = append(errs, fmt.Errorf("after must be at most %d bytes, got %d", maxKeyLen, len(v)))
				continue
			}
			q.after = v
		default:
			errs = append(errs, fmt.Errorf("unknown parameter %s (want created_after, limit, after)", strconv.Quote(clip(name))))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return listQuery{}, err
	}
	return q, nil
}

// allDigits refuses the signs and spaces strconv.Atoi would accept.
func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// clip bounds untrusted text echoed in an error detail.
func clip(s string) string { return app.ElideText(s, 64) }
