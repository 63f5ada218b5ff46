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
