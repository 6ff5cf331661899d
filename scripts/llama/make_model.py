#!/usr/bin/env python3
"""Write a tiny random-weight llama-architecture GGUF model for modelgate's tests.

    make_model.py OUT            # chat/completions model
    make_model.py --embed OUT    # the same shape, mean pooling, for /v1/embeddings

The weights are random (fixed seed: the same bytes on every machine), so replies
are gibberish; what the tests need is a real engine doing real work: tokenizing,
prefilling into its KV cache, decoding, counting usage. Shape: 4 layers, hidden
256, 4 attention heads (2 KV heads), FFN 768, context 8192, f16 matrices.

The tokenizer is SentencePiece-style (llama.cpp's "llama" vocab): <unk>, <s>,
</s>, the ChatML control tokens, 256 byte-fallback tokens, single characters,
then common English words and every prefix of each (llama.cpp's tokenizer
builds a piece by merging pairs of pieces already in the vocab, so a word it
cannot reach through its prefixes would split into single characters).
Needs numpy and the gguf package of the llama.cpp tree (gguf-py).
"""

import sys

import numpy as np
import gguf

N_LAYER = 4
N_EMBD = 256
N_HEAD = 4
N_HEAD_KV = 2
N_FF = 768
N_CTX = 8192
VOCAB_TARGET = 1000
SEED = 20240611

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

WORDS = """
hello model gate chat stream token cache prompt server
the be to of and a in that have it for not on with he as you do at this but his by
from they we say her she or an will my one all would there their what so up out if
about who get which go me when make can like time no just him know take people into
year your good some could them see other than then now look only come its over think
also back after use two how our work first well way even new want because any these
give day most us is are was were been has had said each tell does set three air play
small end put home read hand port large spell add land here must big high such follow
act why ask men change went light kind off need house picture try again animal point
mother world near build self earth father head stand own page should country found
answer school grow study still learn plant cover food sun four between state keep eye
never last let thought city tree cross farm hard start might story saw far sea draw
left late run while press close night real life few north open seem together next
white children begin got walk example ease paper group always music those both mark
often letter until mile river car feet care second book carry took science eat room
friend began idea fish mountain stop once base hear horse cut sure watch color face
wood main enough plain girl usual young ready above ever red list though feel talk
bird soon body dog family direct pose leave song measure door product black short
numeral class wind question happen complete ship area half rock order fire south
problem piece told knew pass since top whole king space heard best hour better true
during hundred five remember step early hold west ground interest reach fast verb
sing listen six table travel less morning ten simple several vowel toward war lay
against pattern slow center love person money serve appear road map rain rule govern
pull cold notice voice unit power town fine certain fly fall lead cry dark machine
note wait plan figure star box noun field rest correct able pound done beauty drive
stood contain front teach week final gave green oh quick develop ocean warm free
minute strong special mind behind clear tail produce fact street inch multiply nothing
course stay wheel full force blue object decide surface deep moon island foot system
busy test record boat common gold possible plane stead dry wonder laugh thousand ago
ran check game shape equate hot miss brought heat snow tire bring yes distant fill
east paint language among
""".split()


def vocab():
    """The token list, scores and types, deterministic."""
    pieces, scores, types = [], [], []
    seen = set()

    def add(piece, score, ttype):
        if piece in seen:
            return
        seen.add(piece)
        pieces.append(piece)
        scores.append(score)
        types.append(ttype)

    T = gguf.TokenType
    add("<unk>", 0.0, T.UNKNOWN)
    add("<s>", 0.0, T.CONTROL)
    add("</s>", 0.0, T.CONTROL)
    add("<|im_start|>", 0.0, T.CONTROL)
    add("<|im_end|>", 0.0, T.CONTROL)
    for b in range(256):
        add("<0x%02X>" % b, 0.0, T.BYTE)
    chars = "\u2581" + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?;:'\"-()[]{}/\\_*+=<>@#$%&|~`^"
    for c in chars:
        add(c, -1000.0, T.NORMAL)
    for c in chars[1:]:
        add("\u2581" + c, -900.0, T.NORMAL)
    # Words with the leading space marker, most common first, each with
    # every prefix; longer pieces score higher so merges prefer them.
    for w in WORDS:
        form = "\u2581" + w
        new = [form[:i] for i in range(2, len(form) + 1) if form[:i] not in seen]
        if len(pieces) + len(new) > VOCAB_TARGET:
            break
        for piece in new:
            add(piece, float(len(piece)) - len(pieces) / 10000.0, T.NORMAL)
    return pieces, scores, types


def main(argv):
    embed = False
    args = argv[1:]
    if args and args[0] == "--embed":
        embed = True
        args = args[1:]
    if len(args) != 1:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        print("usage: make_model.py [--embed] OUT", file=sys.stderr)
        return 2
    out = args[0]

    pieces, scores, types = vocab()
    n_vocab = len(pieces)
    rng = np.random.default_rng(SEED + (1 if embed else 0))

    w = gguf.GGUFWriter(out, "llama")
    w.add_name("modelgate-tiny-embed" if embed else "modelgate-tiny")
    w.add_context_length(N_CTX)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_rope_dimension_count(N_EMBD // N_HEAD)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(n_vocab)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    if embed:
        w.add_pooling_type(gguf.PoolingType.MEAN)

    w.add_tokenizer_model("llama")
    w.add_token_list(pieces)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(True)
    w.add_chat_template(CHAT_TEMPLATE)

    def mat(rows, cols):
        # numpy shape (rows, cols) is GGUF's (cols, rows): rows = outputs.
        return (rng.standard_normal((rows, cols), dtype=np.float32) * 0.05).astype(np.float16)

    ones = np.ones(N_EMBD, dtype=np.float32)
    head_dim = N_EMBD // N_HEAD
    w.add_tensor("token_embd.weight", mat(n_vocab, N_EMBD))
    for i in range(N_LAYER):
        p = "blk.%d." % i
        w.add_tensor(p + "attn_norm.weight", ones)
        w.add_tensor(p + "attn_q.weight", mat(N_EMBD, N_EMBD))
        w.add_tensor(p + "attn_k.weight", mat(N_HEAD_KV * head_dim, N_EMBD))
        w.add_tensor(p + "attn_v.weight", mat(N_HEAD_KV * head_dim, N_EMBD))
        w.add_tensor(p + "attn_output.weight", mat(N_EMBD, N_EMBD))
        w.add_tensor(p + "ffn_norm.weight", ones)
        w.add_tensor(p + "ffn_gate.weight", mat(N_FF, N_EMBD))
        w.add_tensor(p + "ffn_up.weight", mat(N_FF, N_EMBD))
        w.add_tensor(p + "ffn_down.weight", mat(N_EMBD, N_FF))
    w.add_tensor("output_norm.weight", ones)
    w.add_tensor("output.weight", mat(n_vocab, N_EMBD))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
