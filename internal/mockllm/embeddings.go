package mockllm

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// EmbeddingDim is the dimension of the mock's embeddings.
const EmbeddingDim = 8

// embeddingRequest is the part of an embeddings request the mock reads.
type embeddingRequest struct {
	Model          string     `json:"model"`
	Input          inputWords `json:"input"`
	EncodingFormat string     `json:"encoding_format"`
}

// serveEmbeddings answers POST /v1/embeddings after the configured latency.
func (s *Server) serveEmbeddings(ctx *fasthttp.RequestCtx, st *state, jitter time.Duration, mode Mode) {
	var req embeddingRequest
	if err := json.Unmarshal(ctx.PostBody(), &req); err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, "invalid JSON body: "+err.Error())
		return
	}
	if req.Model == "" {
		req.Model = st.cfg.Name
	}
	if !s.await(st.cfg.Latency + jitter) {
		ctx.SetConnectionClose()
		writeError(ctx, fasthttp.StatusServiceUnavailable, "mock server closed")
		return
	}
	buf := s.getBuf()
	*buf = appendEmbeddings(*buf, &req, !st.cfg.NoUsage)
	s.finish(ctx, mode, *buf)
	s.putBuf(buf)
}

// appendEmbeddings appends the reply to req: one embedding per input, as float
// arrays or, for encoding_format "base64", as base64 of little-endian float32s.
func appendEmbeddings(b []byte, req *embeddingRequest, usage bool) []byte {
	b64 := req.EncodingFormat == "base64"
	b = append(b, `{"object":"list","data":[`...)
	for i, item := range req.Input.items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"object":"embedding","index":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `,"embedding":`...)
		vec := Embedding(item)
		if b64 {
			var raw [EmbeddingDim * 4]byte
			for j, f := range vec {
				binary.LittleEndian.PutUint32(raw[4*j:], math.Float32bits(f))
			}
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, raw[:])
			b = append(b, '"')
		} else {
			b = append(b, '[')
			for j, f := range vec {
				if j > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendFloat(b, float64(f), 'g', -1, 32)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	b = append(b, `],"model":`...)
	b = appendJSONString(b, req.Model)
	if usage {
		b = append(b, `,"usage":{"prompt_tokens":`...)
		b = strconv.AppendInt(b, int64(req.Input.words), 10)
		b = append(b, `,"total_tokens":`...)
		b = strconv.AppendInt(b, int64(req.Input.words), 10)
		b = append(b, '}')
	}
	return append(b, '}')
}

// Embedding returns the mock's embedding of one input: a unit vector derived
// from the SHA-256 of input (a string's bytes, or the compact JSON of a token
// array), so equal inputs get equal vectors.
func Embedding(input []byte) [EmbeddingDim]float32 {
	sum := sha256.Sum256(input)
	var v [EmbeddingDim]float64
	var norm float64
	for i := range v {
		u := binary.LittleEndian.Uint32(sum[4*i:])
		v[i] = float64(u)/(1<<32)*2 - 1
		norm += v[i] * v[i]
	}
	norm = math.Sqrt(norm)
	var out [EmbeddingDim]float32
	for i := range v {
		if norm > 0 {
			out[i] = float32(v[i] / norm)
		}
	}
	return out
}
