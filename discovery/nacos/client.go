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
	// CacheDir and LogDir are the SDK's own files. Both must be set: the SDK
	// would otherwise write beside the binary.
	CacheDir  string
	LogDir    string
	LogLevel  string // SDK log level; default "warn"
	TimeoutMs uint64 // per request to Nacos; default 5000
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
	naming, err := clients.NewNamingClient(param)
	if err != nil {
		return nil, fmt.Errorf("nacos: create naming client: %w", err)
	}
	return &SDKClient{naming: naming, api: newHTTPAPI(cfg), subs: map[string]*vo.SubscribeParam{}}, nil
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
		servers = append(servers, *constant.NewServerConfig(host, port))
	}
	cc := constant.NewClientConfig(
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
	)
	return vo.NacosClientParam{ClientConfig: cc, ServerConfigs: servers}, nil
}

// Naming returns the SDK client, for registering instances (self-registration,
// tests).
func (c *SDKClient) Naming() naming_client.INamingClient { return c.naming }

// ListServices implements Client.
func (c *SDKClient) ListServices(group string) ([]string, error) {
	const pageSize = 500
	var names []string
	for page := uint32(1); ; page++ {
		list, err := c.naming.GetAllServicesInfo(vo.GetAllServiceInfoParam{GroupName: group, PageNo: page, PageSize: pageSize})
		if err != nil {
			return nil, fmt.Errorf("nacos: list services of group %s: %w", group, err)
		}
		names = append(names, list.Doms...)
		if len(list.Doms) < pageSize || int64(len(names)) >= list.Count {
			return names, nil
		}
	}
}

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
