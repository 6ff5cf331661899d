package degrade

import (
	"fmt"
	"strings"
)

// Class is the criticality of a route's traffic. It decides who is shed in
// TierShed (Sheddable only) and the order of the queue in TierCap (Critical,
// then Standard, then Sheddable). The zero value is Standard, so a route
// that says nothing is neither protected nor shed.
type Class uint8

// The classes. Their numeric order is not their priority; see Class.
const (
	Standard Class = iota
	Critical
	Sheddable
)

// numClasses is the number of classes and of queues in a Limiter.
const numClasses = 3

var classNames = [numClasses]string{"standard", "critical", "sheddable"}

// rank maps a class to its queue, highest priority first.
var rank = [numClasses]uint8{Standard: 1, Critical: 0, Sheddable: 2}

// String returns "standard", "critical" or "sheddable".
func (c Class) String() string {
	if int(c) < numClasses {
		return classNames[c]
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// MarshalText encodes the class as its name, for JSON and YAML.
func (c Class) MarshalText() ([]byte, error) {
	if int(c) >= numClasses {
		return nil, fmt.Errorf("degrade: marshal class %d: %w", uint8(c), ErrBadClass)
	}
	return []byte(c.String()), nil
}

// UnmarshalText decodes a class's name, as ParseClass, so a config field
// of type Class reads "critical", "standard" or "sheddable".
func (c *Class) UnmarshalText(b []byte) error {
	v, err := ParseClass(string(b))
	if err == nil {
		*c = v
	}
	return err
}

// UnmarshalYAML reads a class's name from YAML; yaml.v3 calls it instead
// of UnmarshalText, whose error would end the decoding of the whole
// document at this field. An unknown name decodes to a class that is not
// Valid, for validation to report with its field; a value that is not a
// string is the decoder's type error, with its line.
func (c *Class) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err != nil {
		return err
	}
	v, err := ParseClass(s)
	if err != nil {
		v = Class(numClasses)
	}
	*c = v
	return nil
}

// Valid reports whether c is one of the classes.
func (c Class) Valid() bool { return int(c) < numClasses }

// ParseClass accepts "critical", "standard" or "sheddable" in any case; the
// empty string is Standard, the default of a route that names none.
func ParseClass(s string) (Class, error) {
	if s == "" {
		return Standard, nil
	}
	for i, name := range classNames {
		if strings.EqualFold(s, name) {
			return Class(i), nil
		}
	}
	return 0, fmt.Errorf("degrade: parse class %q: %w", s, ErrBadClass)
}
