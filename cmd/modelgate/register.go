package main

import (
	"fmt"
	"net"
	"strconv"

	"github.com/nacos-group/nacos-sdk-go/v2/vo"

	"github.com/modelgate/modelgate/discovery/nacos"
)

// selfRegistration is this daemon's own instance in Nacos.
type selfRegistration struct {
	client *nacos.SDKClient
	param  vo.RegisterInstanceParam
}

// register registers the daemon as an ephemeral instance of cfg.Service,
// on the API listener's address.
func register(client *nacos.SDKClient, cfg *RegisterConfig, api net.Addr) (*selfRegistration, error) {
	host, portStr, _ := net.SplitHostPort(api.String())
	port, _ := strconv.Atoi(portStr)
	if cfg.Port > 0 {
		port = cfg.Port
	}
	ip := cfg.IP
	if ip == "" {
		ip = host
		if a := net.ParseIP(host); a == nil || a.IsUnspecified() {
			ip = firstAddress()
		}
	}
	r := &selfRegistration{client: client, param: vo.RegisterInstanceParam{
		Ip: ip, Port: uint64(port), Weight: cfg.Weight, Enable: true, Healthy: true, Ephemeral: true,
		Metadata: cfg.Meta, ServiceName: cfg.Service, GroupName: cfg.Group,
	}}
	ok, err := client.Naming().RegisterInstance(r.param)
	if err != nil || !ok {
		return nil, fmt.Errorf("register %s@@%s %s:%d in nacos: ok=%v: %w", cfg.Group, cfg.Service, ip, port, ok, err)
	}
	return r, nil
}

func (r *selfRegistration) deregister() error {
	_, err := r.client.Naming().DeregisterInstance(vo.DeregisterInstanceParam{
		Ip: r.param.Ip, Port: r.param.Port, ServiceName: r.param.ServiceName, GroupName: r.param.GroupName, Ephemeral: true,
	})
	return err
}

// firstAddress is the first non-loopback IPv4 address of this host, or
// 127.0.0.1.
func firstAddress() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return "127.0.0.1"
}
