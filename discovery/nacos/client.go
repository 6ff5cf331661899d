package nacos

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/nacos-group/nacos-sdk-go/v2/clients"
	"github.com/nacos-group/nacos-sdk-go/v2/clients/naming_client"
	"github.com/nacos-group/nacos-sdk-go/v2/common/constant"
	"github.com/nacos-group/nacos-sdk-go/v2/model"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"
)

// Client is what the Watcher needs from Nacos. Implementations must be safe
// for concurrent use; changed may be called from any goroutine, including
// from inside Subscribe, and must return at once.
type Client interface {
	// ListServices returns the names of every service in group.
	ListServices(group string) ([]string, error)
	// Subscribe calls changed whenever the service's instances change.
	Subscribe(group, service string, changed func()) error
	// Unsubscribe stops the callbacks of an earlier Subscribe.
	Unsubscribe(group, service string) error
	// Instances reads the current instance list of a service from Nacos.
	// The returned slice belongs to the caller.
	Instances(group, service string) ([]model.Instance, error)
}

// ClientConfig says how to reach Nacos.
type ClientConfig struct {
	Servers   []string // "host:port" of each server's HTTP port; gRPC is that port + 1000
	Namespace string   // namespace ID; "" is the public namespace
	Username  string   // only when Nacos auth is on
	Password  string
	// AccessKey and SecretKey sign every request (HMAC-SHA1, as the SDK
	// does), for Nacos deployments that check access keys.
	AccessKey string
	SecretKey string
	// TLS, when not nil, reaches every server over TLS: the HTTP API over
	// https and the SDK's gRPC with TLS.
	TLS *TLSConfig
	// CacheDir and LogDir are the SDK's own files. Both must be set: the SDK
	// would otherwise write beside the binary.
	CacheDir  string
	LogDir    string
	LogLevel  string // SDK log level; default "warn"
	TimeoutMs uint64 // per request to Nacos; default 5000
}

// TLSConfig is how the servers' certificates are checked.
type TLSConfig struct {
	// CAFile is a PEM file of the certificates that sign the servers';
	// "" trusts the system's roots. The HTTP API trusts only the file's
	// certificates; the SDK's gRPC (nacos-sdk-go v2.3.5) trusts them in
	// addition to the system's roots.
	CAFile string
	// ServerName is the name the certificates must carry; default the
	// host of each server address. Only the HTTP API honours it: the
	// SDK's gRPC always checks the host it dials (v2.3.5 ignores its own
	// ServerNameOverride), so a server's certificate must name the host
	// or IP address it is configured by.
	ServerName string
}

// SDKClient is the Client over nacos-sdk-go's naming client (listing and
// push notifications) and the Nacos HTTP API (instance lists).
type SDKClient struct {
	naming naming_client.INamingClient
	api    *httpAPI

	mu   sync.Mutex
	subs map[string]*vo.SubscribeParam // the SDK matches Unsubscribe by this pointer
}

var _ Client = (*SDKClient)(nil)

// Dial creates the naming client. It does not wait for a connection: the
// SDK connects in the background and keeps reconnecting, re-subscribing
// after a Nacos restart.
func Dial(cfg ClientConfig) (*SDKClient, error) {
	param, err := clientParam(&cfg)
	if err != nil {
		return nil, err
	}
	api, err := newHTTPAPI(cfg)
	if err != nil {
		return nil, err
	}
	naming, err := clients.NewNamingClient(param)
	if err != nil {
		return nil, fmt.Errorf("nacos: create naming client: %w", err)
	}
	return &SDKClient{naming: naming, api: api, subs: map[string]*vo.SubscribeParam{}}, nil
}

// clientParam validates cfg, fills its defaults and builds the SDK's
// parameters.
func clientParam(cfg *ClientConfig) (vo.NacosClientParam, error) {
	if len(cfg.Servers) == 0 {
		return vo.NacosClientParam{}, errors.New("nacos: no servers configured")
	}
	if cfg.CacheDir == "" || cfg.LogDir == "" {
		return vo.NacosClientParam{}, errors.New("nacos: CacheDir and LogDir must be set")
	}
	if cfg.LogLevel == "" {
		cfg.LogLevel = "warn"
	}
	if cfg.TimeoutMs == 0 {
		cfg.TimeoutMs = 5000
	}
	if (cfg.AccessKey == "") != (cfg.SecretKey == "") {
		return vo.NacosClientParam{}, errors.New("nacos: set both AccessKey and SecretKey, or neither")
	}
	scheme := "http"
	if cfg.TLS != nil {
		scheme = "https"
	}
	var servers []constant.ServerConfig
	for _, s := range cfg.Servers {
		host, portStr, err := net.SplitHostPort(s)
		if err != nil {
			return vo.NacosClientParam{}, fmt.Errorf("nacos: server %q: %w", s, err)
		}
		port, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil {
			return vo.NacosClientParam{}, fmt.Errorf("nacos: server %q: bad port", s)
		}
		servers = append(servers, *constant.NewServerConfig(host, port, constant.WithScheme(scheme)))
	}
	opts := []constant.ClientOption{
		constant.WithNamespaceId(cfg.Namespace),
		constant.WithUsername(cfg.Username),
		constant.WithPassword(cfg.Password),
		constant.WithTimeoutMs(cfg.TimeoutMs),
		constant.WithCacheDir(cfg.CacheDir),
		constant.WithLogDir(cfg.LogDir),
		constant.WithLogLevel(cfg.LogLevel),
		// Start from what the server says, not from a previous run's files.
		constant.WithNotLoadCacheAtStart(true),
		// Deliver "every instance gone": the Watcher applies its own policy.
		constant.WithUpdateCacheWhenEmpty(true),
	}
	if cfg.AccessKey != "" {
		opts = append(opts, constant.WithAccessKey(cfg.AccessKey), constant.WithSecretKey(cfg.SecretKey))
	}
	if t := cfg.TLS; t != nil {
		if _, err := t.config(); err != nil {
			return vo.NacosClientParam{}, err
		}
		// Appointed: the SDK would otherwise let nacos_remote_client_rpc_tls_*
		// environment variables replace this config.
		opts = append(opts, constant.WithTLS(constant.TLSConfig{Appointed: true, Enable: true, CaFile: t.CAFile, ServerNameOverride: t.ServerName}))
	}
	return vo.NacosClientParam{ClientConfig: constant.NewClientConfig(opts...), ServerConfigs: servers}, nil
}

// Naming returns the SDK client, for registering instances (self-registration,
// tests).
func (c *SDKClient) Naming() naming_client.INamingClient { return c.naming }

// ListServices implements Client with reads from the server's HTTP API:
// one call per 1,000 services.
func (c *SDKClient) ListServices(group string) ([]string, error) {
	const pageSize = 1000
	var names []string
	for page := 1; ; page++ {
		list, total, err := c.api.services(group, page, pageSize)
		if err != nil {
			return nil, fmt.Errorf("nacos: list services of group %s: %w", group, err)
		}
		names = append(names, list...)
		if len(list) < pageSize || len(names) >= total {
			return names, nil
		}
	}
}

// Calls returns how many HTTP requests the client has sent to Nacos,
// logins included (the SDK's gRPC traffic is not counted).
func (c *SDKClient) Calls() uint64 { return c.api.calls.Load() }

// Subscribe implements Client. The SDK's list is not read: it stays the
// SDK's, which sorts it in place from other goroutines.
func (c *SDKClient) Subscribe(group, service string, changed func()) error {
	p := &vo.SubscribeParam{
		ServiceName:       service,
		GroupName:         group,
		SubscribeCallback: func([]model.Instance, error) { changed() },
	}
	c.mu.Lock()
	c.subs[group+"@@"+service] = p
	c.mu.Unlock()
	if err := c.naming.Subscribe(p); err != nil {
		c.mu.Lock()
		delete(c.subs, group+"@@"+service)
		c.mu.Unlock()
		return fmt.Errorf("nacos: subscribe %s@@%s: %w", group, service, err)
	}
	return nil
}

// Unsubscribe implements Client.
func (c *SDKClient) Unsubscribe(group, service string) error {
	c.mu.Lock()
	p, ok := c.subs[group+"@@"+service]
	delete(c.subs, group+"@@"+service)
	c.mu.Unlock()
	if !ok {
		return nil
	}
	if err := c.naming.Unsubscribe(p); err != nil {
		return fmt.Errorf("nacos: unsubscribe %s@@%s: %w", group, service, err)
	}
	return nil
}

// Instances implements Client with a read from the server's HTTP API.
func (c *SDKClient) Instances(group, service string) ([]model.Instance, error) {
	list, err := c.api.instances(group, service)
	if err != nil {
		return nil, fmt.Errorf("nacos: instances of %s@@%s: %w", group, service, err)
	}
	return list, nil
}

// Close closes the naming client and the HTTP connections.
func (c *SDKClient) Close() {
	c.naming.CloseClient()
	c.api.client.CloseIdleConnections()
}
