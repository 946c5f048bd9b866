package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// chaosView is the wire shape of GET/PUT /control and /control/inventory.
// Durations travel as whole milliseconds because JSON has no duration
// type.
type chaosView struct {
	LatencyMS    int64   `json:"latency_ms"`
	ErrorRate    float64 `json:"error_rate"`
	Down         bool    `json:"down"`
	DeclineRate  float64 `json:"decline_rate"`
	FlapPeriodMS int64   `json:"flap_period_ms"`
	// DownNow is read-only: whether a request arriving now would get a
	// 503 from Down or flapping (error_rate aside).
	DownNow bool `json:"down_now"`
}

func viewOf(c Chaos, downNow bool) chaosView {
	return chaosView{
		LatencyMS:    c.Latency.Milliseconds(),
		ErrorRate:    c.ErrorRate,
		Down:         c.Down,
		DeclineRate:  c.DeclineRate,
		FlapPeriodMS: c.FlapPeriod.Milliseconds(),
		DownNow:      downNow,
	}
}

// chaosPatch is a PUT /control (or /control/inventory) body: nil fields
// keep their current value.
type chaosPatch struct {
	LatencyMS    *int64   `json:"latency_ms"`
	ErrorRate    *float64 `json:"error_rate"`
	Down         *bool    `json:"down"`
	DeclineRate  *float64 `json:"decline_rate"`
	FlapPeriodMS *int64   `json:"flap_period_ms"`
}

// maxMS keeps the ms→Duration conversion from overflowing before Validate
// gets a chance to reject the value.
const maxMS = int64(MaxDuration / time.Millisecond)

// decodeChaosPatch parses a PUT /control body. Unlike charges, unknown
// fields are rejected: on a control API they are almost always typos
// ("latency" for "latency_ms") that would otherwise silently do nothing.
func decodeChaosPatch(body []byte) (chaosPatch, error) {
	var p chaosPatch
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return chaosPatch{}, fmt.Errorf("decode control body: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return chaosPatch{}, errors.New("decode control body: trailing data after JSON object")
	}
	if err := errors.Join(checkMS("latency_ms", p.LatencyMS), checkMS("flap_period_ms", p.FlapPeriodMS)); err != nil {
		return chaosPatch{}, err
	}
	return p, nil
}

func checkMS(name string, v *int64) error {
	if v != nil && (*v < 0 || *v > maxMS) {
		return fmt.Errorf("%s must be between 0 and %d, got %d", name, maxMS, *v)
	}
	return nil
}

// apply merges the patch over c and validates the result.
func (p chaosPatch) apply(c Chaos) (Chaos, error) {
	if p.LatencyMS != nil {
		c.Latency = time.Duration(*p.LatencyMS) * time.Millisecond
	}
	if p.ErrorRate != nil {
		c.ErrorRate = *p.ErrorRate
	}
	if p.Down != nil {
		c.Down = *p.Down
	}
	if p.DeclineRate != nil {
		c.DeclineRate = *p.DeclineRate
	}
	if p.FlapPeriodMS != nil {
		c.FlapPeriod = time.Duration(*p.FlapPeriodMS) * time.Millisecond
	}
	if err := c.Validate(); err != nil {
		return Chaos{}, err
	}
	return c, nil
}
