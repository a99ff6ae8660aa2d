#include "eval/analysis_files.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>

#include "core/error.hpp"
#include "data/data_loader.hpp"
#include "data/dataset_manifest.hpp"
#include "data/tokenizer.hpp"

namespace dt {

std::vector<std::vector<int32_t>> read_eval_windows(const Config& cfg, const std::vector<std::string>& paths,
                                                    int seq_len, int64_t max_tokens, uint64_t seed) {
  if (paths.empty()) fail("no evaluation data (expected --data PATH of prepared shards)");
  for (const std::string& p : paths) dataset_shards(p);  // a bad path fails first, by name
  LoaderOptions lo;
  lo.seq_len = seq_len;
  lo.micro_batch = 1;
  lo.seed = seed;
  lo.model_vocab_size = cfg.model.vocab_size;
  lo.tokenizer = tokenizer_name(cfg.data.tokenizer);
  lo.prefetch = 2;
  std::vector<std::unique_ptr<DataLoader>> loaders;
  std::vector<int64_t> left;
  int64_t available = 0;
  for (const std::string& p : paths) {
    loaders.push_back(std::make_unique<DataLoader>(std::vector<DatasetSpec>{{p, 1.0}}, lo));
    left.push_back(loaders.back()->datasets()[0].num_samples);
    available += left.back();
  }
  const int64_t want = std::min(available, std::max<int64_t>(1, max_tokens / seq_len));
  std::vector<std::vector<int32_t>> windows;
  for (size_t d = 0; int64_t(windows.size()) < want; d = (d + 1) % loaders.size()) {
    if (left[d] == 0) continue;
    --left[d];
    windows.emplace_back(size_t(seq_len) + 1);
    loaders[d]->next(windows.back().data());
  }
  return windows;
}

void write_text_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  if (!f || !(f << text) || !f.flush()) fail("cannot write ", path);
}

std::vector<int32_t> load_haystack(const std::string& path, const Tokenizer& tok, int64_t max_tokens) {
  namespace fs = std::filesystem;
  const bool shards = fs::is_directory(path) || path.find_first_of("*?[") != std::string::npos ||
                      (path.size() > 3 && path.compare(path.size() - 3, 3, ".h5") == 0);
  std::vector<int32_t> out;
  if (shards) {
    for (const ListedShard& shard : dataset_shards(path)) {
      const ShardReader r = open_listed_shard(shard);
      if (r.meta().tokenizer != tok.name())
        fail("--haystack ", shard.path, ": shards of tokenizer '", r.meta().tokenizer, "', but the model uses '",
             tok.name(), "'");
      const int64_t n = std::min(r.num_tokens(), max_tokens - int64_t(out.size()));
      std::vector<int32_t> buf(static_cast<size_t>(n));
      r.read_tokens(0, n, buf.data());
      for (int32_t t : buf)
        if (t != r.meta().eos_id) out.push_back(t);
      if (int64_t(out.size()) >= max_tokens) break;
    }
  } else {
    std::ifstream f(path, std::ios::binary);
    if (!fs::is_regular_file(path) || !f) fail("--haystack ", path, ": cannot open the text file");
    // At most 16 bytes per wanted token: more than any tokenizer needs on text.
    std::string text(size_t(std::min<int64_t>(int64_t(fs::file_size(path)), max_tokens * 16)), '\0');
    f.read(text.data(), std::streamsize(text.size()));
    text.resize(size_t(f.gcount()));
    // A cut inside a multi-byte UTF-8 character drops that character.
    size_t lead = text.size();
    while (lead > 0 && (uint8_t(text[lead - 1]) & 0xC0) == 0x80) --lead;
    if (lead > 0 && uint8_t(text[lead - 1]) >= 0xC0) {
      const uint8_t c = uint8_t(text[lead - 1]);
      const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
      if (text.size() - (lead - 1) < need) text.resize(lead - 1);
    }
    out = tok.encode(text);
    if (int64_t(out.size()) > max_tokens) out.resize(size_t(max_tokens));
  }
  if (out.empty()) fail("--haystack ", path, ": no text tokens");
  return out;
}

}  // namespace dt
