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

func malformed(provider string) *apierr.Error {
	return apierr.New(http.StatusBadGateway, apierr.ProviderError,
		"Provider %s returned a malformed response; retry, or allow fallbacks.", provider)
}

// inStreamError classifies an error event sent inside an upstream stream.
func inStreamError(provider string, data []byte) *Error {
	status := int(gjson.GetBytes(data, "error.code").Int())
	if status < 400 || status > 599 {
		status = http.StatusBadGateway
	}
	e := classifyStatus(provider, status, http.Header{}, data)
	e.Status = 200 // the upstream's HTTP status was 200; the failure came in-band
	return e
}
