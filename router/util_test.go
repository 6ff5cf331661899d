package router

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"strconv"
)

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

func splitAddr(addr string) (string, int) {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return host, p
}
