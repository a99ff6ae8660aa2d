// The YAML config loader: shipped configs load, every kind of bad input fails
// with one line naming the file and the key path, --set overrides, round trip.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/config.hpp"

namespace {

const std::string kConfigs = std::string(DT_SOURCE_DIR) + "/configs";

// The smallest valid config: required keys only.
const char* kMinimal = R"(
model:
  vocab_size: 320
  d_model: 128
  n_layers: 2
  n_heads: 2
  n_kv_heads: 2
  ffn_hidden: 344
train:
  seq_len: 64
  global_batch_size: 8
  max_steps: 100
)";

dt::Config load(const std::string& yaml, const std::vector<std::string>& sets = {}) {
  return dt::load_config_text(yaml, sets, "bad.yaml");
}

// Loads and returns the error message; fails the test if nothing was thrown.
std::string error_of(const std::string& yaml, const std::vector<std::string>& sets = {}) {
  try {
    load(yaml, sets);
  } catch (const dt::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected dt::Error for:\n" << yaml;
  return "";
}

// The error is one line, names the file, the key path and says what was expected.
void expect_error(const std::string& yaml, const std::vector<std::string>& sets, const std::string& path,
                  const std::string& also = "") {
  const std::string msg = error_of(yaml, sets);
  SCOPED_TRACE(msg);
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "message is not one line";
  EXPECT_EQ(msg.rfind("bad.yaml: ", 0), 0u) << "message does not start with the file";
  EXPECT_NE(msg.find(path + ":"), std::string::npos) << "message does not name " << path;
  if (!also.empty()) {
    EXPECT_NE(msg.find(also), std::string::npos) << "message lacks '" << also << "'";
  }
}
void expect_set_error(const std::string& set, const std::string& path, const std::string& also = "") {
  expect_error(kMinimal, {set}, path, also);
}

std::vector<std::string> shipped_configs() {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(kConfigs))
    if (e.path().extension() == ".yaml") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(ConfigShipped, EveryConfigLoadsAndValidatesOnItsSmallestLayout) {
  const auto files = shipped_configs();
  EXPECT_GE(files.size(), 5u);
  for (const auto& f : files) {
    SCOPED_TRACE(f);
    dt::Config c;
    ASSERT_NO_THROW(c = dt::load_config_file(f));
    EXPECT_EQ(c.source, f);
    EXPECT_NO_THROW(dt::validate_layout(c, c.parallel.tp * c.parallel.pp * c.parallel.cp));
  }
}

TEST(ConfigShipped, TinyIsTheQuickstartModel) {
  const auto c = dt::load_config_file(kConfigs + "/tiny.yaml");
  EXPECT_EQ(c.model.vocab_size, 320);  // >= the byte tokenizer's 257 ids
  EXPECT_EQ(c.model.head_dim(), 32);
  EXPECT_EQ(c.train.max_steps, 300);
  EXPECT_EQ(c.train.decay, dt::LrDecay::Cosine);
  EXPECT_EQ(c.grad_accum_steps(1), 2);
  ASSERT_EQ(c.data.datasets.size(), 1u);
  EXPECT_EQ(c.data.datasets[0].path, "data/corpus/quickstart");
  EXPECT_EQ(c.train.run_dir, "runs/tiny");
}

TEST(ConfigShipped, Diff3bMatchesThePaperRecipe) {
  const auto c = dt::load_config_file(kConfigs + "/diff-3b.yaml");
  EXPECT_EQ(c.model.n_layers, 28);
  EXPECT_EQ(c.model.d_model, 3072);
  EXPECT_EQ(c.model.head_dim(), 128);
  EXPECT_EQ(c.model.attention, dt::AttentionKind::Diff);
  EXPECT_EQ(c.train.global_batch_size * c.train.seq_len, 4194304);  // "4M-token batches"
  EXPECT_EQ(c.train.max_tokens, 1000000000000);
  EXPECT_EQ(c.total_steps(), 238419);  // ceil(1e12 / 4194304)
  EXPECT_EQ(c.train.decay, dt::LrDecay::Linear);
  EXPECT_DOUBLE_EQ(c.train.min_lr, 1.28e-5);
}

// The paper's baseline: 24 softmax heads of 128, where DIFF-3B has 12
// differential heads of two 128-wide sub-heads (the same parameter shapes).
TEST(ConfigShipped, Transformer3bDiffersFromDiff3bOnlyInAttentionHeadsAndPaths) {
  auto diff = dt::load_config_file(kConfigs + "/diff-3b.yaml");
  auto std3b = dt::load_config_file(kConfigs + "/transformer-3b.yaml");
  EXPECT_EQ(std3b.model.attention, dt::AttentionKind::Standard);
  EXPECT_EQ(std3b.model.n_heads, 24);
  EXPECT_EQ(std3b.model.n_kv_heads, 24);
  EXPECT_EQ(std3b.model.head_dim(), 128);
  EXPECT_EQ(std3b.model.kv_dim(), diff.model.kv_dim());
  std3b.model.attention = diff.model.attention;
  std3b.model.n_heads = diff.model.n_heads;
  std3b.model.n_kv_heads = diff.model.n_kv_heads;
  std3b.train.run_dir = diff.train.run_dir;
  std3b.checkpoint.dir = diff.checkpoint.dir;
  std3b.source = diff.source;
  EXPECT_TRUE(std3b == diff);
}

TEST(ConfigShipped, StableLmRecipeUsesCosineAndItsEpsilon) {
  const auto c = dt::load_config_file(kConfigs + "/stablelm-3b-4e1t.yaml");
  EXPECT_EQ(c.train.decay, dt::LrDecay::Cosine);
  EXPECT_DOUBLE_EQ(c.train.adam_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c.train.min_lr, 1.28e-5);
  EXPECT_DOUBLE_EQ(c.train.lr, 3.2e-4);
}

TEST(ConfigDefaults, AbsentKeysTakeTheHeaderDefaults) {
  const auto c = load(kMinimal);
  const dt::Config d;
  EXPECT_EQ(c.model.rope_theta, d.model.rope_theta);
  EXPECT_EQ(c.model.attention, dt::AttentionKind::Diff);
  EXPECT_EQ(c.train.lr, d.train.lr);
  EXPECT_EQ(c.parallel.micro_batch_size, 1);
  EXPECT_EQ(c.runtime.device, "cpu");
  EXPECT_TRUE(c.data.datasets.empty());  // allowed here; training refuses later
}

TEST(ConfigErrors, UnknownSectionNamesIt) {
  expect_error(std::string(kMinimal) + "optimiser:\n  lr: 1\n", {}, "optimiser", "unknown section");
}

TEST(ConfigErrors, UnknownKeyNamesPathAndSuggestsTheClosest) {
  std::string y = kMinimal;
  y.replace(y.find("  n_kv_heads: 2"), 14, "  n_kv_head: 2");
  expect_error(y, {}, "model.n_kv_head", "did you mean 'n_kv_heads'");
}

TEST(ConfigErrors, UnknownKeyInsideADatasetItemNamesItsIndex) {
  const std::string y = std::string(kMinimal) +
                        "data:\n  datasets:\n    - {path: a, weight: 1.0}\n    - {path: b, wieght: 2.0}\n";
  expect_error(y, {}, "data.datasets[1].wieght", "unknown key");
}

TEST(ConfigErrors, DuplicateKeyIsRejected) {
  expect_error(std::string(kMinimal) + "runtime:\n  threads: 2\n  threads: 4\n", {}, "runtime.threads", "duplicate");
}

TEST(ConfigErrors, MissingRequiredKeyNamesIt) {
  std::string y = kMinimal;
  y.erase(y.find("  ffn_hidden: 344\n"), 18);
  expect_error(y, {}, "model.ffn_hidden", "required");
}

TEST(ConfigErrors, WrongTypeNamesPathAndExpectedType) {
  expect_set_error("model.d_model=big", "model.d_model", "expected an integer");
  expect_set_error("model.n_layers=2.5", "model.n_layers", "expected an integer");
  expect_set_error("model.n_layers=2.0", "model.n_layers", "expected an integer");
  expect_set_error("model.n_layers=\"2\"", "model.n_layers", "quoted string");
  expect_set_error("model.n_layers=[2]", "model.n_layers", "a list");
  expect_set_error("model.n_layers=99999999999", "model.n_layers", "expected an integer in");
  expect_set_error("train.lr=fast", "train.lr", "expected a number");
  expect_set_error("train.lr=.inf", "train.lr", "expected a number");
  expect_set_error("model.tie_embeddings=1", "model.tie_embeddings", "true or false");
  expect_set_error("train.seed=-1", "train.seed", "non-negative");
  expect_set_error("data.datasets=a/b", "data.datasets", "expected a list");
  expect_error(std::string(kMinimal) + "data:\n  datasets:\n    - a/b\n", {}, "data.datasets[0]", "mapping");
  expect_error(std::string(kMinimal) + "runtime: cpu\n", {}, "runtime", "mapping");
}

TEST(ConfigErrors, OutOfRangeValuesNameTheKey) {
  expect_set_error("model.d_model=-128", "model.d_model", "positive");
  expect_set_error("model.vocab_size=0", "model.vocab_size", "positive");
  expect_set_error("model.norm_eps=0", "model.norm_eps", "> 0");
  expect_set_error("train.lr=0", "train.lr", "> 0");
  expect_set_error("train.lr=-1e-3", "train.lr", "> 0");
  expect_set_error("train.min_lr=1.0", "train.min_lr", "greater than lr");
  expect_set_error("train.beta1=-0.1", "train.beta1", "[0, 1)");
  expect_set_error("train.beta2=1.0", "train.beta2", "[0, 1)");
  expect_set_error("train.adam_eps=0", "train.adam_eps", "> 0");
  expect_set_error("train.max_steps=0", "train.max_steps", "positive");
  expect_set_error("train.log_every=0", "train.log_every", "positive");
  expect_set_error("parallel.zero=2", "parallel.zero", "0 or 1");
  expect_set_error("parallel.micro_batch_size=0", "parallel.micro_batch_size", "positive");
  expect_set_error("parallel.tp=0", "parallel.tp", "positive");
  expect_set_error("checkpoint.keep_last=0", "checkpoint.keep_last", "positive");
  expect_set_error("checkpoint.every_steps=10", "checkpoint.dir", "no checkpoint directory");
  expect_set_error("runtime.threads=-2", "runtime.threads", ">= 0");
  expect_set_error("data.datasets=[{path: a, weight: 0}]", "data.datasets[0].weight", "> 0");
  expect_set_error("data.datasets=[{weight: 1}]", "data.datasets[0].path", "required");
}

TEST(ConfigErrors, HeadDimMustBeAnInteger) {
  expect_set_error("model.n_heads=3", "model.n_heads",
                   "d_model 128 is not divisible by 2*n_heads=6 (head_dim = d_model/(2*n_heads) must be an integer)");
  // Standard attention counts its own heads: d = D / H.
  expect_error(kMinimal, {"model.attention=standard", "model.n_heads=3", "model.n_kv_heads=1"}, "model.n_heads",
               "d_model 128 is not divisible by n_heads=3 (head_dim = d_model/n_heads must be an integer)");
  const auto standard = load(kMinimal, {"model.attention=standard", "model.n_heads=4", "model.n_kv_heads=2"});
  EXPECT_EQ(standard.model.head_dim(), 32);
  EXPECT_EQ(standard.model.kv_dim(), 64);
  // DIFF V2: H output heads of d = D/H, 2H query heads (Wq has 2D rows), KV kv heads of d.
  const auto v2 = load(kMinimal, {"model.attention=diff_v2", "model.n_heads=4", "model.n_kv_heads=2"});
  EXPECT_EQ(v2.model.attention, dt::AttentionKind::DiffV2);
  EXPECT_EQ(v2.model.head_dim(), 32);
  EXPECT_EQ(v2.model.q_dim(), 256);
  EXPECT_EQ(v2.model.kv_dim(), 64);
  expect_error(kMinimal, {"model.attention=diff_v2", "model.n_heads=3", "model.n_kv_heads=1"}, "model.n_heads",
               "d_model 128 is not divisible by n_heads=3");
}

TEST(ConfigErrors, HeadDimMustBeEvenForRope) {
  expect_error(kMinimal, {"model.d_model=12", "model.n_heads=2", "model.n_kv_heads=1"}, "model.n_heads", "is odd");
}

TEST(ConfigErrors, HeadsMustBeAMultipleOfKvHeads) {
  expect_error(kMinimal, {"model.d_model=192", "model.n_heads=3", "model.n_kv_heads=2"}, "model.n_kv_heads",
               "n_heads 3 is not divisible by n_kv_heads 2");
}

TEST(ConfigErrors, BatchMustBeAMultipleOfMicroBatch) {
  expect_set_error("parallel.micro_batch_size=3", "train.global_batch_size", "parallel.micro_batch_size 3");
}

TEST(ConfigErrors, ExactlyOneOfStepsAndTokens) {
  expect_set_error("train.max_tokens=1000000", "train.max_steps", "not both");
  expect_set_error("train.max_steps=null", "train.max_steps", "exactly one");
}

TEST(ConfigErrors, WarmupMustFitInTheRun) {
  expect_set_error("train.warmup_steps=101", "train.warmup_steps", "100 total steps");
  EXPECT_NO_THROW(load(kMinimal, {"train.warmup_steps=100"}));
}

TEST(ConfigErrors, UnknownEnumValueListsTheChoices) {
  expect_set_error("model.attention=linear", "model.attention", "diff, standard or diff_v2");
  expect_set_error("train.decay=step", "train.decay", "linear, cosine or constant");
  expect_set_error("runtime.device=tpu", "runtime.device", "cpu or cuda");
}

TEST(ConfigErrors, TensorParallelMustSplitWholeKvHeads) {
  expect_set_error("parallel.tp=4", "parallel.tp", "n_kv_heads 2 is not divisible by tp=4");
}

TEST(ConfigErrors, ValuesWithNewlinesStillGiveOneLine) {
  expect_set_error("runtime.device=\"cu\\nda\"", "runtime.device", "cpu or cuda");
}

TEST(ConfigErrors, YamlSyntaxErrorNamesFileAndLine) {
  const std::string msg = error_of("model:\n  d_model: [1, 2\n");
  EXPECT_EQ(msg.rfind("bad.yaml:", 0), 0u) << msg;
  EXPECT_NE(msg.find("YAML syntax error"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

TEST(ConfigErrors, EmptyFileAndMissingFileAreNamed) {
  EXPECT_NE(error_of("# nothing\n").find("empty"), std::string::npos);
  try {
    dt::load_config_file("/nonexistent/x.yaml");
    ADD_FAILURE() << "no error";
  } catch (const dt::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/x.yaml: cannot open"), std::string::npos) << e.what();
  }
}

TEST(ConfigOverrides, SetReplacesAndAddsValues) {
  const auto c = load(kMinimal, {"train.lr=1e-3", "model.attention=standard", "checkpoint.dir=ck",
                                 "data.datasets=[{path: x, weight: 2}]"});
  EXPECT_DOUBLE_EQ(c.train.lr, 1e-3);
  EXPECT_EQ(c.model.attention, dt::AttentionKind::Standard);
  EXPECT_EQ(c.checkpoint.dir, "ck");
  ASSERT_EQ(c.data.datasets.size(), 1u);
  EXPECT_DOUBLE_EQ(c.data.datasets[0].weight, 2.0);
}

TEST(ConfigOverrides, SetReachesIntoTheDatasetList) {
  const std::string y = std::string(kMinimal) + "data:\n  datasets:\n    - {path: a}\n    - {path: b}\n";
  const auto c = load(y, {"data.datasets[1].weight=3.5", "data.datasets.0.path=c"});
  EXPECT_EQ(c.data.datasets[0].path, "c");
  EXPECT_DOUBLE_EQ(c.data.datasets[1].weight, 3.5);
  expect_error(y, {"data.datasets[2].path=z"}, "data.datasets[2]", "no such item");
  expect_error(y, {"data.datasets[0].wieght=1"}, "data.datasets[0].wieght", "unknown key");
}

TEST(ConfigOverrides, NullRemovesAKeySoStepsCanReplaceTokens) {
  const auto c = load(kMinimal, {"train.max_steps=null", "train.max_tokens=5000"});
  EXPECT_EQ(c.train.max_steps, 0);
  EXPECT_EQ(c.total_steps(), 10);  // ceil(5000 / (8*64))
}

TEST(ConfigOverrides, UnknownSetKeyFailsLikeAnUnknownFileKey) {
  expect_set_error("model.n_head=4", "model.n_head", "unknown key");
  expect_set_error("modle.n_heads=4", "modle", "unknown section");
  expect_set_error("train.lr.peak=4", "train.lr.peak", "data.datasets[i]");
  const std::string msg = error_of(kMinimal, {"train.lr"});
  EXPECT_NE(msg.find("key.path=value"), std::string::npos) << msg;
}

TEST(ConfigOverrides, SetValuesAreValidatedLikeFileValues) {
  expect_set_error("train.global_batch_size=\"8\"", "train.global_batch_size", "quoted string");
}

// The batch keys have Megatron-LM's names. The old names name the new ones;
// a config difftron saved under them (an older checkpoint) still reads.
TEST(ConfigErrors, OldBatchKeysNameTheirNewNames) {
  std::string y = kMinimal;
  y.replace(y.find("global_batch_size"), 17, "batch_size");
  expect_error(y, {}, "train.batch_size", "expected train.global_batch_size");
  expect_set_error("parallel.micro_batch=2", "parallel.micro_batch", "expected parallel.micro_batch_size");
}

TEST(ConfigSaved, OldBatchKeysOfASavedConfigReadAsTheNewOnes) {
  std::string y = std::string(kMinimal) + "parallel:\n  micro_batch: 4\n";
  y.replace(y.find("global_batch_size"), 17, "batch_size");
  const dt::Config c = dt::load_saved_config_text(y, "manifest.yaml");
  EXPECT_EQ(c.train.global_batch_size, 8);
  EXPECT_EQ(c.parallel.micro_batch_size, 4);
}

TEST(ConfigLayout, WorldMustBeAMultipleOfTheModelParallelGroup) {
  const auto c = load(kMinimal, {"parallel.tp=2"});
  EXPECT_NO_THROW(dt::validate_layout(c, 4));
  try {
    dt::validate_layout(c, 3);
    ADD_FAILURE() << "no error";
  } catch (const dt::Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.yaml: parallel: world size 3"), std::string::npos) << e.what();
  }
}

TEST(ConfigLayout, BatchMustSplitIntoMicroBatchesOnEveryDataRank) {
  const auto c = load(kMinimal, {"parallel.micro_batch_size=2"});  // batch 8
  EXPECT_NO_THROW(dt::validate_layout(c, 4));                 // dp 4: one micro-batch each
  try {
    dt::validate_layout(c, 3);
    ADD_FAILURE() << "no error";
  } catch (const dt::Error& e) {
    EXPECT_NE(std::string(e.what()).find("train.global_batch_size: 8 is not divisible by parallel.micro_batch_size*dp = 2*3"),
              std::string::npos)
        << e.what();
  }
}

TEST(ConfigRoundTrip, EveryShippedConfigReadsBackEqual) {
  for (const auto& f : shipped_configs()) {
    SCOPED_TRACE(f);
    const auto c = dt::load_config_file(f);
    const auto back = dt::load_config_text(dt::config_to_yaml(c), {}, f);
    EXPECT_TRUE(back == c) << dt::config_to_yaml(c);
  }
}

TEST(ConfigRoundTrip, AwkwardValuesReadBackExactly) {
  dt::Config c = load(kMinimal, {"train.max_steps=null", "train.max_tokens=123457"});
  c.train.lr = 0.1 + 0.2;  // not a short decimal: needs all 17 digits
  c.train.min_lr = 1e-300;
  c.train.seed = 18446744073709551615ull;
  c.train.run_dir = "runs/a \"quoted\" #dir: x";
  c.checkpoint.dir = "tab\there, back\\slash, donn\xc3\xa9" "es";
  c.data.tokenizer = "true";  // a string that looks like a bool
  c.data.datasets = {{"data/x*.h5", 0.25}, {"null", 3.0}};
  const auto back = dt::load_config_text(dt::config_to_yaml(c), {}, "bad.yaml");
  EXPECT_TRUE(back == c) << dt::config_to_yaml(c);
}

// runtime.deterministic: on unless the config turns it off; only true or false
// (an error naming the key otherwise); written back as it was read.
TEST(ConfigRuntime, DeterministicDefaultsToTrueAndReadsBackBothValues) {
  EXPECT_TRUE(load(kMinimal).runtime.deterministic);
  EXPECT_FALSE(load(kMinimal, {"runtime.deterministic=false"}).runtime.deterministic);
  EXPECT_TRUE(load(std::string(kMinimal) + "runtime:\n  deterministic: true\n").runtime.deterministic);
  expect_set_error("runtime.deterministic=1", "runtime.deterministic", "true or false");
  expect_set_error("runtime.deterministic=yes", "runtime.deterministic", "true or false");
  expect_set_error("runtime.deterministic=\"false\"", "runtime.deterministic", "true or false");
  for (bool on : {true, false}) {
    dt::Config c = load(kMinimal);
    c.runtime.deterministic = on;
    const auto back = dt::load_config_text(dt::config_to_yaml(c), {}, "bad.yaml");
    EXPECT_EQ(back.runtime.deterministic, on) << dt::config_to_yaml(c);
    EXPECT_TRUE(back == c);
  }
}

TEST(ConfigFormulas, TotalStepsRoundsATokenBudgetUp) {
  EXPECT_EQ(load(kMinimal).total_steps(), 100);
  EXPECT_EQ(load(kMinimal, {"train.max_steps=null", "train.max_tokens=512"}).total_steps(), 1);
  EXPECT_EQ(load(kMinimal, {"train.max_steps=null", "train.max_tokens=513"}).total_steps(), 2);
}

TEST(ConfigFormulas, LambdaInitFollowsTheDepthSchedule) {
  // λ_init = 0.8 − 0.6·exp(−0.3·l); exact in double up to rounding of exp.
  EXPECT_NEAR(dt::ModelConfig::lambda_init(0), 0.2, 1e-15);
  EXPECT_NEAR(dt::ModelConfig::lambda_init(5), 0.8 - 0.6 * std::exp(-1.5), 1e-15);
  EXPECT_LT(dt::ModelConfig::lambda_init(27), 0.8);
}

}  // namespace

// A checkpoint's weights fit a config when every model key of the schema
// matches, except those a later stage may change (rope_theta for context
// extension, init_std, recompute); the first differing key is named.
TEST(ConfigModelDifference, NamesTheFirstSchemaKeyThatDiffersAndAllowsStageKeys) {
  using namespace dt;
  const auto c = load(kMinimal);
  ModelConfig m = c.model;
  EXPECT_EQ(model_config_difference(c.model, m), "");
  m.rope_theta *= 16;
  m.recompute = Recompute::Full;
  m.init_std = 0.5;
  EXPECT_EQ(model_config_difference(c.model, m), "");
  m.n_kv_heads = c.model.n_kv_heads * 2;
  EXPECT_EQ(model_config_difference(c.model, m),
            "model.n_kv_heads: " + std::to_string(c.model.n_kv_heads) + " in the checkpoint, " +
                std::to_string(m.n_kv_heads) + " in the config");
  m = c.model;
  m.attention = c.model.attention == AttentionKind::Diff ? AttentionKind::Standard : AttentionKind::Diff;
  const std::string want_kind = c.model.attention == AttentionKind::Diff ? "diff in the checkpoint, standard"
                                                                         : "standard in the checkpoint, diff";
  EXPECT_EQ(model_config_difference(c.model, m), "model.attention: " + want_kind + " in the config");
  m = c.model;
  m.norm_eps = 1e-6;
  EXPECT_NE(model_config_difference(c.model, m).find("model.norm_eps: "), std::string::npos);
}
