package replycache

import (
	"slices"

	"github.com/tidwall/gjson"
)

// Cacheable is the default policy for fresh hits: an embeddings request
// always qualifies; a chat or completions request only when it sets
// temperature to 0 explicitly (a sampled reply is one of many, and a client
// that asks again usually wants another). Other APIs never qualify. It is
// Rules{Always: ["embeddings"], Deterministic: ["chat", "completions"]},
// without allocating.
//
// The policy gates fresh hits only: stale entries serve any request with a
// matching key, in TierCache or when every upstream attempt failed.
func Cacheable(api string, body []byte) bool {
	switch api {
	case "embeddings":
		return true
	case "chat", "completions":
		return temperatureZero(body)
	}
	return false
}

// Rules is a fresh-hit policy as configuration. Its zero value serves no
// fresh hit; DefaultRules is Cacheable's policy.
type Rules struct {
	// Always lists the APIs whose requests always qualify.
	Always []string `yaml:"always" json:"always"`
	// Deterministic lists the APIs whose requests qualify when they set
	// temperature to 0 explicitly.
	Deterministic []string `yaml:"deterministic" json:"deterministic"`
}

// DefaultRules returns the rules of Cacheable.
func DefaultRules() Rules {
	return Rules{Always: []string{"embeddings"}, Deterministic: []string{"chat", "completions"}}
}

// Cacheable applies the rules to a request. It is safe for concurrent use
// as long as the rules are not modified.
func (r Rules) Cacheable(api string, body []byte) bool {
	return r.Allows(api, temperatureZero(body))
}

// Allows applies the rules to a request whose temperature the caller has
// read already: temperatureZero is true when it is set to 0 explicitly.
func (r Rules) Allows(api string, temperatureZero bool) bool {
	return slices.Contains(r.Always, api) ||
		slices.Contains(r.Deterministic, api) && temperatureZero
}

func temperatureZero(body []byte) bool {
	t := gjson.GetBytes(body, "temperature")
	return t.Type == gjson.Number && t.Num == 0
}
