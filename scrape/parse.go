package scrape

import (
	"bytes"
	"errors"
	"strconv"
)

// errGarbage is a body that is not Prometheus text.
var errGarbage = errors.New("scrape: not Prometheus text")

// parse reads Prometheus text and calls fn with each sample's name and
// value, in order; samples with labels are passed under their bare name.
// It stops at the first line that is not a comment, blank or
// `name[{labels}] value [timestamp]`, and returns errGarbage.
func parse(body []byte, fn func(name []byte, v float64)) error {
	for len(body) > 0 {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		name, v, ok := sample(line)
		if !ok {
			return errGarbage
		}
		fn(name, v)
	}
	return nil
}

// sample splits one sample line.
func sample(line []byte) (name []byte, v float64, ok bool) {
	i := 0
	for i < len(line) && nameByte(line[i], i == 0) {
		i++
	}
	if i == 0 {
		return nil, 0, false
	}
	name = line[:i]
	if i < len(line) && line[i] == '{' {
		end, ok := labelsEnd(line, i+1)
		if !ok {
			return nil, 0, false
		}
		i = end
	}
	if i == len(line) || (line[i] != ' ' && line[i] != '\t') {
		return nil, 0, false
	}
	rest := bytes.TrimLeft(line[i:], " \t")
	if j := bytes.IndexAny(rest, " \t"); j >= 0 {
		rest = rest[:j] // a timestamp follows
	}
	v, err := strconv.ParseFloat(string(rest), 64)
	if err != nil {
		return nil, 0, false
	}
	return name, v, true
}

func nameByte(c byte, first bool) bool {
	return c == '_' || c == ':' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || (!first && '0' <= c && c <= '9')
}

// labelsEnd returns the index after the '}' closing labels that start at
// i, skipping quoted values with escapes.
func labelsEnd(line []byte, i int) (int, bool) {
	quoted := false
	for ; i < len(line); i++ {
		switch c := line[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == '}':
			return i + 1, true
		}
	}
	return 0, false
}
