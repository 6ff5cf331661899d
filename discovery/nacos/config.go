package nacos

import (
	"fmt"

	"github.com/nacos-group/nacos-sdk-go/v2/clients"
	"github.com/nacos-group/nacos-sdk-go/v2/clients/config_client"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"
)

// ConfigClient reads and watches Nacos Config entries (modelgate's route
// configuration can live there). Create one per process.
type ConfigClient struct {
	client config_client.IConfigClient
}

// DialConfig creates a Nacos Config client; cfg is as for Dial.
func DialConfig(cfg ClientConfig) (*ConfigClient, error) {
	param, err := clientParam(&cfg)
	if err != nil {
		return nil, err
	}
	c, err := clients.NewConfigClient(param)
	if err != nil {
		return nil, fmt.Errorf("nacos: create config client: %w", err)
	}
	return &ConfigClient{client: c}, nil
}

// Watch returns the current content of dataID in group and calls onChange
// with the new content on every later change, from an SDK goroutine.
func (c *ConfigClient) Watch(dataID, group string, onChange func(content string)) (string, error) {
	cur, err := c.client.GetConfig(vo.ConfigParam{DataId: dataID, Group: group})
	if err != nil {
		return "", fmt.Errorf("nacos: get config %s/%s: %w", group, dataID, err)
	}
	err = c.client.ListenConfig(vo.ConfigParam{DataId: dataID, Group: group,
		OnChange: func(_, _, _, data string) { onChange(data) }})
	if err != nil {
		return "", fmt.Errorf("nacos: listen config %s/%s: %w", group, dataID, err)
	}
	return cur, nil
}

// Publish writes content to dataID in group (for tools and tests).
func (c *ConfigClient) Publish(dataID, group, content string) error {
	ok, err := c.client.PublishConfig(vo.ConfigParam{DataId: dataID, Group: group, Content: content, Type: "yaml"})
	if err != nil || !ok {
		return fmt.Errorf("nacos: publish config %s/%s: ok=%v: %w", group, dataID, ok, err)
	}
	return nil
}

// Close closes the client.
func (c *ConfigClient) Close() { c.client.CloseClient() }
