// difftron generate CKPT --prompt TEXT [...]: sample a continuation from a
// checkpoint, with the KV-cache decoder or (--no-cache) the full forward.

#include <charconv>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "data/tokenizer.hpp"
#include "cli/cli_args.hpp"
#include "eval/eval_model.hpp"
#include "eval/generate/generate.hpp"
#include "cli/commands.hpp"
#include "trainer/trainer.hpp"

namespace dt {

namespace {

struct GenerateArgs {
  std::string ckpt, tokenizer;
  std::optional<std::string> prompt;
  GenerateOptions opt;
};

// The command line; false when --help was printed.
bool parse_args(int argc, char** argv, GenerateArgs& a) {
  SamplingOptions& sampling = a.opt.sampling;
  CommandLine cl("generate", "usage: difftron generate CKPT --prompt TEXT [options]\n",
                 "Continues TEXT with tokens sampled from a checkpoint's model, one process,\n"
                 "every core. The continuation goes to stdout as it is generated; a summary\n"
                 "line (tokens, time, tokens/s) goes to stderr. Generation stops after N new\n"
                 "tokens or at the tokenizer's end-of-text token.\n");
  cl.positional("CKPT", a.ckpt,
                "a step_<N> checkpoint directory, or a checkpoint root (then\n"
                "the newest complete checkpoint in it)");
  cl.value("--prompt", "TEXT", "the text to continue (required, non-empty)",
           [&a](const std::string& v) { a.prompt = v; });
  cl.text("--tokenizer", a.tokenizer, "SPEC",
          "'byte', a Hugging Face tokenizer.json (byte-level BPE) or a .tiktoken\n"
          "rank file (default: the run's data.tokenizer)");
  cl.integer("--max-new-tokens", a.opt.max_new_tokens, 0, 1 << 24, "N", "new tokens at most (default 64)");
  cl.value("--temperature", "T", "softmax temperature (default 1.0; 0: greedy, the most likely token)",
           [&sampling](const std::string& v) {
             sampling.temperature = parse_option<double>("--temperature", v, 0, 1e6, "a number >= 0 (0: greedy)");
           });
  cl.integer("--top-k", sampling.top_k, 0, INT_MAX, "K",
             "sample among the K most likely tokens only (default 0: off)");
  cl.value("--top-p", "P",
           "nucleus: sample among the smallest set of most likely tokens\n"
           "whose probability reaches P (default 1.0: off)",
           [&sampling](const std::string& v) {
             sampling.top_p = parse_option<double>("--top-p", v, 0, 1, "a number in (0, 1] (1: off)");
             if (sampling.top_p == 0) throw UsageError("--top-p " + v + ": expected a number in (0, 1] (1: off)");
           });
  cl.integer<uint64_t>("--seed", a.opt.seed, 0, UINT64_MAX, "S",
                       "sampling seed (default 0); a seed reproduces the output");
  bool no_cache = false;
  cl.flag("--no-cache", no_cache,
          "recompute the whole sequence with the full forward at every\n"
          "step instead of the KV cache (slow; the reference)");
  if (!cl.parse(argc, argv)) return false;
  a.opt.use_cache = !no_cache;
  if (a.ckpt.empty()) throw UsageError("missing CKPT (usage: difftron generate CKPT --prompt TEXT [options])");
  if (!a.prompt) throw UsageError("missing --prompt TEXT (the text to continue)");
  if (a.prompt->empty()) throw UsageError("--prompt is empty; expected some text to continue");
  return true;
}

}  // namespace

int cmd_generate(int argc, char** argv) {
  GenerateArgs a;
  if (!parse_args(argc, argv, a)) return 0;
  use_cpu_threads(0);

  // One sequence; the cache decoder keeps its own buffers, so the model's
  // activations are sized for one position (--no-cache builds its own copy).
  const EvalModel em = load_model_for_eval(a.ckpt, 1, 1);
  const std::string spec = a.tokenizer.empty() ? em.config.data.tokenizer : a.tokenizer;
  const std::unique_ptr<Tokenizer> tok = make_tokenizer(spec);
  if (tok->vocab_size() > em.config.model.vocab_size)
    fail("--tokenizer ", spec, ": its vocabulary (", tok->vocab_size(), " ids) exceeds the model's (",
         em.config.model.vocab_size, ")");
  const std::vector<int32_t> prompt = tok->encode(*a.prompt);
  if (prompt.empty()) fail("--prompt encodes to no tokens; expected some text to continue");

  a.opt.vocab_limit = tok->vocab_size();  // padded ids have no text
  a.opt.stop_token = tok->eos_id();
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  std::optional<clock::time_point> t_first;
  a.opt.on_token = [&](int32_t id) {
    if (!t_first) t_first = clock::now();
    const std::string piece = tok->decode(std::span<const int32_t>(&id, 1));
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  };
  const std::vector<int32_t> out = generate(em, prompt, a.opt);
  const double secs = std::chrono::duration<double>(clock::now() - t0).count();
  const double first = t_first ? std::chrono::duration<double>(*t_first - t0).count() : secs;
  std::fputc('\n', stdout);
  std::fflush(stdout);
  std::fprintf(stderr,
               "generate: %s (step %lld): %zu prompt tokens, %zu new tokens in %.3f s (first token after %.3f s), "
               "%.1f tokens/s, %s\n",
               em.dir.c_str(), static_cast<long long>(em.step), prompt.size(), out.size(), secs, first,
               secs > 0 ? double(out.size()) / secs : 0.0, a.opt.use_cache ? "kv cache" : "no cache");
  return 0;
}

}  // namespace dt
