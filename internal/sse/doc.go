// Package sse reads and writes Server-Sent Events (the text/event-stream
// format of the WHATWG HTML specification), as used by OpenAI-compatible
// providers to stream chat completion chunks.
//
// The gateway relays upstream streams chunk by chunk: a Reader yields one
// Event per dispatched event, and WriteData, WriteEvent, WriteDone and
// WriteComment encode events towards the client. An OpenAI stream ends with
// the data line "[DONE]" (see Event.IsDone).
package sse
