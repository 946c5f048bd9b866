package web

// Close ends every live stream (temporary; replaced by the stream work).
func (h *EventHub) Close() {}
