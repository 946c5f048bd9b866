package sim

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

// problem is an RFC 9457 problem document, the error shape of every route.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

func problemBody(status int, detail string) []byte {
	b, err := json.Marshal(problem{
		Type:   "about:blank",
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
	})
	if err != nil {
		// Marshalling a struct of strings and ints cannot fail.
		panic(err)
	}
	return b
}

func writeProblem(w http.ResponseWriter, status int, detail string) {
	writeRaw(w, status, "application/problem+json", problemBody(status, detail))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeProblem(w, http.StatusInternalServerError, "encode response: "+err.Error())
		return
	}
	writeRaw(w, status, "application/json", b)
}

// writeAnswer sends a stored or computed answer. A 503 carries
// Retry-After, as a real provider's overload answer would.
func writeAnswer(w http.ResponseWriter, a answer) {
	contentType := "application/json"
	if a.problem {
		contentType = "application/problem+json"
	}
	if a.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeRaw(w, a.status, contentType, a.body)
}

func problemAnswer(status int, detail string) answer {
	return answer{status: status, body: problemBody(status, detail), problem: true}
}

func writeRaw(w http.ResponseWriter, status int, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	// A write error means the client went away; there is no one to tell.
	_, _ = w.Write(body)
}

// readBody reads a request body of at most maxBodyBytes. When it returns
// false it has already answered the request.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err == nil {
		return body, true
	}
	if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
		writeProblem(w, http.StatusRequestEntityTooLarge, "body exceeds 64 KiB")
	} else {
		writeProblem(w, http.StatusBadRequest, "read body: "+err.Error())
	}
	return nil, false
}

// mustJSON marshals a response built from a recorded charge. Recording
// already marshalled the same fields once, so this cannot fail.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// keyValid answers 400 and reports false when key is not one.
func keyValid(w http.ResponseWriter, key string) bool {
	if err := validateKey(key); err != nil {
		writeProblem(w, http.StatusBadRequest, err.Error())
		return false
	}
	return true
}
