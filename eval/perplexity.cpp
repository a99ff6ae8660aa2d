#include "eval/perplexity.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>

#include "core/error.hpp"
#include "core/log.hpp"
#include "data/data_loader.hpp"
#include "data/dataset_manifest.hpp"
#include "data/tokenizer.hpp"

namespace dt {

void PositionNll::add(const float* losses, int rows) {
  const size_t T = sum_.size();
  for (int r = 0; r < rows; ++r)
    for (size_t t = 0; t < T; ++t) sum_[t] += losses[size_t(r) * T + t];
  windows_ += rows;
}

std::vector<double> PositionNll::at_position() const {
  std::vector<double> out(sum_.size(), 0.0);
  if (windows_ == 0) return out;
  for (size_t t = 0; t < sum_.size(); ++t) out[t] = sum_[t] / double(windows_);
  return out;
}

std::vector<double> PositionNll::cumulative() const {
  // mean_w (1/p) Σ_{t<p} loss_w(t) = (1/p) Σ_{t<p} mean_w loss_w(t)
  std::vector<double> out = at_position();
  double run = 0;
  for (size_t t = 0; t < out.size(); ++t) {
    run += out[t];
    out[t] = run / double(t + 1);
  }
  return out;
}

std::vector<int> log_spaced_positions(int seq_len, int n) {
  std::vector<int> ps;
  for (int i = 0; i < n; ++i) {
    const int p = int(std::lround(std::pow(double(seq_len), n > 1 ? double(i) / (n - 1) : 1.0)));
    if (ps.empty() || p > ps.back()) ps.push_back(std::clamp(p, 1, seq_len));
  }
  if (ps.back() != seq_len) ps.push_back(seq_len);
  return ps;
}

double EvalResult::perplexity() const { return std::exp(mean_nll()); }

namespace {

// Window budget per dataset: the total in proportion to each one's windows,
// the remainder of the rounding to the largest fractional shares. Never above
// a dataset's windows, since the total is at most their sum.
std::vector<int64_t> split_windows(int64_t total, const std::vector<int64_t>& available) {
  int64_t all = 0;
  for (int64_t a : available) all += a;
  std::vector<int64_t> take(available.size());
  std::vector<std::pair<double, size_t>> frac;
  int64_t given = 0;
  for (size_t i = 0; i < available.size(); ++i) {
    const long double share = (long double)total * available[i] / all;
    take[i] = int64_t(share);
    given += take[i];
    frac.emplace_back(-double(share - take[i]), i);
  }
  std::sort(frac.begin(), frac.end());
  for (size_t k = 0; given < total; ++k, ++given) ++take[frac[k].second];
  return take;
}

}  // namespace

EvalResult evaluate_perplexity(Transformer& model, const Config& cfg, const EvalOptions& opt) {
  if (opt.data.empty()) fail("no evaluation data (expected --data PATH of prepared shards)");
  if (!model.has_embed() || !model.has_head()) fail("evaluate_perplexity needs the whole model on one process");
  const int B = model.micro_batch(), T = model.seq_len();
  const auto t0 = std::chrono::steady_clock::now();

  LoaderOptions lo;
  lo.seq_len = T;
  lo.micro_batch = B;
  lo.seed = opt.seed;
  lo.model_vocab_size = cfg.model.vocab_size;
  lo.tokenizer = tokenizer_name(cfg.data.tokenizer);
  lo.prefetch = 4;
  // Every path must name shards before any loader starts (and logs), so a
  // mistyped later path is still the one line printed.
  for (const std::string& path : opt.data) dataset_shards(path);
  std::vector<std::unique_ptr<DataLoader>> loaders;
  std::vector<int64_t> available;
  for (const std::string& path : opt.data) {
    loaders.push_back(std::make_unique<DataLoader>(std::vector<DatasetSpec>{{path, 1.0}}, lo));
    available.push_back(loaders.back()->datasets()[0].num_samples);
  }

  EvalResult res;
  res.seq_len = T;
  if (opt.by_position) res.by_position = PositionNll(T);
  int64_t total = 0;
  for (int64_t a : available) total += a;
  if (opt.max_tokens > 0) total = std::min(total, std::max<int64_t>(1, opt.max_tokens / T));
  const std::vector<int64_t> take = split_windows(total, available);

  std::vector<int32_t> window(size_t(B) * (T + 1)), inputs(size_t(B) * T), targets(size_t(B) * T);
  auto last_report = t0;
  for (size_t d = 0; d < loaders.size(); ++d) {
    DatasetEval de{opt.data[d], available[d], take[d], 0.0};
    for (int64_t left = take[d]; left > 0;) {
      loaders[d]->next(window.data());
      for (int b = 0; b < B; ++b) {
        const int32_t* w = window.data() + size_t(b) * (T + 1);
        std::copy(w, w + T, inputs.begin() + size_t(b) * T);
        std::copy(w + 1, w + T + 1, targets.begin() + size_t(b) * T);
      }
      model.forward(inputs.data(), targets.data());
      // The last batch of a dataset may be partly past its budget: count its first rows only.
      const int rows = int(std::min<int64_t>(B, left));
      const float* losses = model.losses().f32();
      double s = 0;
      for (int64_t i = 0; i < int64_t(rows) * T; ++i) s += losses[i];
      de.nll_sum += s;
      if (opt.by_position) res.by_position.add(losses, rows);
      left -= rows;
      res.windows += rows;

      const auto now = std::chrono::steady_clock::now();
      if (opt.progress_seconds > 0 && std::chrono::duration<double>(now - last_report).count() >= opt.progress_seconds) {
        const double sec = std::chrono::duration<double>(now - t0).count();
        log_info("eval: ", res.windows, "/", total, " windows, ", int64_t(res.windows * T / sec), " tokens/s");
        last_report = now;
      }
    }
    res.nll_sum += de.nll_sum;
    res.datasets.push_back(de);
  }
  res.tokens = res.windows * T;
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace dt
