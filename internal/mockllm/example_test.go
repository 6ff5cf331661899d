package mockllm_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/modelgate/modelgate/internal/mockllm"
)

func ExampleStart() {
	s, err := mockllm.Start("127.0.0.1:0", mockllm.Config{Name: "gpu-1", ReplyWords: 4})
	if err != nil {
		panic(err)
	}
	defer s.Close()

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	body := `{"model":"llama-3","messages":[{"role":"user","content":"hello there"}]}`
	resp, err := (&http.Client{Transport: tr}).Post("http://"+s.Addr()+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()

	var reply struct {
		Model   string `json:"model"`
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
		Usage struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil {
		panic(err)
	}
	fmt.Println(resp.Header.Get("X-Mock-Instance"), reply.Model)
	fmt.Println(reply.Choices[0].Message.Content)
	fmt.Println(reply.Usage.PromptTokens, reply.Usage.CompletionTokens)
	// Output:
	// gpu-1 llama-3
	// lorem ipsum dolor sit
	// 3 4
}
