package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestUpstreamTimeouts(t *testing.T) {
	c, err := FromEnv([]string{"PERPETUO_CONNECT_TIMEOUT=3s", "PERPETUO_FIRST_BYTE_TIMEOUT=20s",
		"PERPETUO_STREAM_IDLE=1m", "PERPETUO_ATTEMPT_TIMEOUT=5m"})
	require.NoError(t, err)
	require.Equal(t, 3*time.Second, c.ConnectTimeout)
	require.Equal(t, 20*time.Second, c.FirstByteTimeout)
	require.Equal(t, time.Minute, c.StreamIdle)
	require.Equal(t, 5*time.Minute, c.AttemptTimeout)

	c, err = FromEnv(nil)
	require.NoError(t, err)
	require.Zero(t, c.ConnectTimeout, "unset: the defaults apply")

	for _, bad := range []string{"PERPETUO_CONNECT_TIMEOUT=off", "PERPETUO_FIRST_BYTE_TIMEOUT=soon", "PERPETUO_ATTEMPT_TIMEOUT=-1s"} {
		_, err := FromEnv([]string{bad})
		require.Error(t, err, bad)
		require.Contains(t, err.Error(), bad[:len("PERPETUO_")+5], "the error names the setting")
	}
}

func TestDebugListenIsLoopbackOnly(t *testing.T) {
	for _, ok := range []string{"", "127.0.0.1:6060", "[::1]:6060", "localhost:6060"} {
		c, err := FromEnv([]string{"PERPETUO_DEBUG_LISTEN=" + ok})
		require.NoError(t, err, ok)
		require.Equal(t, ok, c.DebugListen)
	}
	for _, bad := range []string{":6060", "0.0.0.0:6060", "10.0.0.1:6060", "example.com:6060", "6060"} {
		_, err := FromEnv([]string{"PERPETUO_DEBUG_LISTEN=" + bad})
		require.ErrorContains(t, err, "PERPETUO_DEBUG_LISTEN", bad)
	}
}

func TestStreamKeepAlive(t *testing.T) {
	for env, want := range map[string]time.Duration{
		"": 15 * time.Second, "PERPETUO_STREAM_KEEPALIVE=5s": 5 * time.Second,
		"PERPETUO_STREAM_KEEPALIVE=off": -1, "PERPETUO_STREAM_KEEPALIVE=0": -1,
	} {
		c, err := FromEnv([]string{env})
		require.NoError(t, err, env)
		require.Equal(t, want, c.KeepAlive, env)
	}
	_, err := FromEnv([]string{"PERPETUO_STREAM_KEEPALIVE=often"})
	require.ErrorContains(t, err, "PERPETUO_STREAM_KEEPALIVE")
}

func TestRecordsRetention(t *testing.T) {
	for env, want := range map[string]time.Duration{
		"": 90 * 24 * time.Hour, "PERPETUO_RECORDS_RETENTION=30d": 30 * 24 * time.Hour,
		"PERPETUO_RECORDS_RETENTION=36h": 36 * time.Hour, "PERPETUO_RECORDS_RETENTION=off": -1,
	} {
		c, err := FromEnv([]string{env})
		require.NoError(t, err, env)
		require.Equal(t, want, c.Retention, env)
	}
	for _, bad := range []string{"PERPETUO_RECORDS_RETENTION=-3d", "PERPETUO_RECORDS_RETENTION=xd", "PERPETUO_RECORDS_RETENTION=soon"} {
		_, err := FromEnv([]string{bad})
		require.ErrorContains(t, err, "PERPETUO_RECORDS_RETENTION", bad)
	}
}

func TestAzureDeployments(t *testing.T) {
	c, err := FromEnv([]string{"PERPETUO_PROVIDER_AZURE_API_KEY=k", "PERPETUO_PROVIDER_AZURE_BASE_URL=https://res.openai.azure.com",
		"PERPETUO_PROVIDER_AZURE_API_VERSION=2025-01-01-preview", "PERPETUO_PROVIDER_AZURE_DEPLOYMENTS=gpt-4o=prod-4o, gpt-4o-mini = mini"})
	require.NoError(t, err)
	az := c.Credentials["azure"]
	require.Equal(t, "k", az.APIKey)
	require.Equal(t, "2025-01-01-preview", az.APIVersion)
	require.Equal(t, map[string]string{"gpt-4o": "prod-4o", "gpt-4o-mini": "mini"}, az.Deployments)
	require.Len(t, c.Credentials, 1, "the settings make no credential of their own")

	_, err = FromEnv([]string{"PERPETUO_PROVIDER_AZURE_API_KEY=k", "PERPETUO_PROVIDER_AZURE_DEPLOYMENTS=gpt-4o"})
	require.ErrorContains(t, err, "PERPETUO_PROVIDER_AZURE_DEPLOYMENTS")
	require.ErrorContains(t, err, "model=deployment")
}
