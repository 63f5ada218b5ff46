package providers

import (
	"net/http"

	"github.com/tidwall/gjson"

	"github.com/perpetuo/perpetuo/internal/apierr"
)

func misconfigured(provider string) *apierr.Error {
	return apierr.New(http.StatusBadGateway, apierr.ProviderError,
		"Provider %s has no usable base URL configured; an operator must set one.", provider)
}

// blockedAddress names neither the address nor the host: the caller may be
// probing what the gateway's network holds.
func blockedAddress(provider string) *apierr.Error {
	return apierr.New(http.StatusBadGateway, apierr.ProviderError,
		"Provider %s: the workspace credential's base_url resolves to an address workspaces may not reach; "+
			"an operator can allow it with PERPETUO_EGRESS_ALLOW.", provider)
}

// malformed: the upstream answered, with something that is not a chat
// completion (or chunk) at all, e.g. an HTML error page from a proxy.
// Malformed is the error for an answer or a chunk that is not what the
// provider's API sends (status: the upstream's HTTP status). It is
// retryable: another endpoint may answer well.
func Malformed(provider string, status int) *Error {
	return &Error{Status: status, Client: malformed(provider), Retryable: true, Class: Uncertain}
}

func malformed(provider string) *apierr.Error {
	return apierr.New(http.StatusBadGateway, apierr.ProviderError,
		"Provider %s sent a malformed answer (not a chat completion); retry, or allow fallbacks.", provider)
}

// cutOff: the upstream began answering and the connection ended before the
// answer did. Whatever arrived before the cut may be incomplete.
func cutOff(provider string) *apierr.Error {
	return apierr.New(http.StatusBadGateway, apierr.ProviderUnavailable,
		"Provider %s cut off its answer: the connection closed before it finished. Retry, or allow fallbacks.", provider)
}

// inStreamError classifies an error event sent inside an upstream stream
// to c.
func inStreamError(c Call, data []byte) *Error {
	status := int(gjson.GetBytes(data, "error.code").Int())
	if status < 400 || status > 599 {
		status = http.StatusBadGateway
	}
	e := classifyStatus(c, status, http.Header{}, data)
	e.Status = 200 // the upstream's HTTP status was 200; the failure came in-band
	return e
}
