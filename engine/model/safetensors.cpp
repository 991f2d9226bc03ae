// Safetensors reader: maps each file read-only, validates its JSON header against the file
// size, and hands out tensor views into the mapping. Format: 8-byte little-endian header
// length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end)}}, then the data
// section the offsets are relative to (https://github.com/huggingface/safetensors).
#include "engine/model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

namespace strata {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; a big-endian host needs byte swaps");

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr const char* kIndexFile = "model.safetensors.index.json";
constexpr const char* kSingleFile = "model.safetensors";

std::string parse_error_text(const std::exception& e) {
  std::string text = e.what();
  if (!text.empty() && text[0] == '[') {
    auto close = text.find("] ");
    if (close != std::string::npos) text = text.substr(close + 2);
  }
  return text;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

std::optional<DType> parse_dtype(const std::string& name) {
  if (name == "F32") return DType::kF32;
  if (name == "BF16") return DType::kBF16;
  if (name == "F16") return DType::kF16;
  return std::nullopt;
}

bool is_non_negative_integer(const Json& v) {
  return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
}

// The shards model.safetensors.index.json names, and which shard holds each tensor.
struct ShardIndex {
  std::vector<std::string> shards;  // unique, sorted
  std::map<std::string, std::string> weight_map;
};

Result<ShardIndex> read_index(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found(path.string() + ": cannot open for reading");
  std::ostringstream text;
  text << in.rdbuf();
  Json root;
  try {
    root = Json::parse(text.str());
  } catch (const Json::exception& e) {
    return data_loss(path.string() + ": invalid JSON: " + parse_error_text(e));
  }
  auto weight_map = root.is_object() ? root.find("weight_map") : root.end();
  if (!root.is_object() || weight_map == root.end() || !weight_map->is_object()) {
    return data_loss(path.string() + ": expected an object with a 'weight_map' object");
  }
  ShardIndex index;
  for (const auto& [tensor, shard] : weight_map->items()) {
    if (!shard.is_string()) {
      return data_loss(path.string() + ": weight_map entry for '" + tensor + "' must be a file name, got " +
                       shard.dump());
    }
    index.weight_map[tensor] = shard.get<std::string>();
    index.shards.push_back(shard.get<std::string>());
  }
  std::sort(index.shards.begin(), index.shards.end());
  index.shards.erase(std::unique(index.shards.begin(), index.shards.end()), index.shards.end());
  if (index.shards.empty()) return data_loss(path.string() + ": weight_map is empty");
  return index;
}

}  // namespace

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

struct SafetensorsCheckpoint::Mapping {
  std::string path;       // for open-time errors
  std::string file_name;  // as the index names it, for TensorInfo::file
  const std::byte* base = nullptr;
  size_t size = 0;

  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (base) munmap(const_cast<std::byte*>(base), size);
  }
};

namespace {

Status map_file(const std::string& path, const std::byte*& base, size_t& size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    std::string message = path + ": cannot open: " + std::strerror(err);
    return err == ENOENT ? not_found(message) : Status(StatusCode::kUnavailable, message);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    std::string message = path + ": cannot stat: " + std::strerror(errno);
    ::close(fd);
    return Status(StatusCode::kUnavailable, message);
  }
  size = static_cast<size_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    return data_loss(path + ": file is " + std::to_string(size) +
                     " bytes, too short for a safetensors header (truncated?)");
  }
  void* addr = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int err = errno;
  ::close(fd);
  if (addr == MAP_FAILED) {
    return resource_exhausted(path + ": mmap of " + std::to_string(size) + " bytes failed: " + std::strerror(err));
  }
  base = static_cast<const std::byte*>(addr);
  return Status::ok_status();
}

// Reads the header of one mapped file and appends its tensors.
Status parse_header(const std::string& path, const std::string& file_name, const std::byte* base, size_t size,
                    std::vector<TensorInfo>& tensors) {
  uint64_t header_len = 0;
  std::memcpy(&header_len, base, 8);
  if (header_len > size - 8) {
    return data_loss(path + ": header length " + std::to_string(header_len) + " exceeds the file size " +
                     std::to_string(size) + " (truncated, or not a safetensors file)");
  }
  const char* header_begin = reinterpret_cast<const char*>(base) + 8;
  Json header;
  try {
    header = Json::parse(header_begin, header_begin + header_len);
  } catch (const Json::exception& e) {
    return data_loss(path + ": invalid JSON header: " + parse_error_text(e));
  }
  if (!header.is_object()) {
    return data_loss(path + ": header is not a JSON object");
  }
  const std::byte* data_section = base + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;

  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    const std::string where = path + ": tensor '" + name + "'";
    if (!entry.is_object()) return data_loss(where + ": header entry is not an object");

    auto dtype_it = entry.find("dtype");
    if (dtype_it == entry.end() || !dtype_it->is_string()) {
      return data_loss(where + ": header entry has no 'dtype' string");
    }
    const std::string dtype_name_text = dtype_it->get<std::string>();
    std::optional<DType> dtype = parse_dtype(dtype_name_text);
    if (!dtype) {
      return unimplemented(where + " has dtype " + dtype_name_text +
                           ", which is not supported (supported: F32, BF16, F16)");
    }

    auto shape_it = entry.find("shape");
    if (shape_it == entry.end() || !shape_it->is_array()) {
      return data_loss(where + ": header entry has no 'shape' list");
    }
    TensorInfo info;
    info.name = name;
    info.dtype = *dtype;
    info.file = file_name;
    uint64_t numel = 1;
    for (const Json& dim : *shape_it) {
      if (!is_non_negative_integer(dim) || dim.get<uint64_t>() > (uint64_t{1} << 48)) {
        return data_loss(where + ": shape " + shape_it->dump() + " must list non-negative integers");
      }
      const uint64_t d = dim.get<uint64_t>();
      if (__builtin_mul_overflow(numel, d, &numel)) {
        return data_loss(where + ": shape " + shape_it->dump() + " overflows");
      }
      info.shape.push_back(static_cast<int64_t>(d));
    }

    auto offsets_it = entry.find("data_offsets");
    if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
        !is_non_negative_integer((*offsets_it)[0]) || !is_non_negative_integer((*offsets_it)[1])) {
      return data_loss(where + ": header entry needs 'data_offsets' [begin, end]");
    }
    const uint64_t begin = (*offsets_it)[0].get<uint64_t>();
    const uint64_t end = (*offsets_it)[1].get<uint64_t>();
    if (begin > end || end > data_size) {
      return data_loss(where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                       "] lie outside the data section (" + std::to_string(data_size) + " bytes; truncated file?)");
    }
    uint64_t expected_bytes = 0;
    if (__builtin_mul_overflow(numel, uint64_t{dtype_size(*dtype)}, &expected_bytes) || end - begin != expected_bytes) {
      return data_loss(where + ": data_offsets span " + std::to_string(end - begin) + " bytes, but shape " +
                       shape_string(info.shape) + " of " + dtype_name_text + " needs " +
                       std::to_string(expected_bytes));
    }
    info.data = data_section + begin;
    info.nbytes = static_cast<size_t>(expected_bytes);
    tensors.push_back(std::move(info));
  }
  return Status::ok_status();
}

}  // namespace

SafetensorsCheckpoint::~SafetensorsCheckpoint() = default;

Result<std::unique_ptr<SafetensorsCheckpoint>> SafetensorsCheckpoint::open(const std::string& model_dir) {
  const fs::path dir(model_dir);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return not_found(model_dir + ": no such directory");

  // Which files make up the checkpoint: the index's shards, model.safetensors, or every
  // *.safetensors file in the folder.
  std::vector<std::string> files;
  std::optional<ShardIndex> index;
  std::string source;
  if (fs::exists(dir / kIndexFile, ec)) {
    STRATA_ASSIGN_OR_RETURN(index, read_index(dir / kIndexFile));
    for (const std::string& shard : index->shards) {
      if (!fs::is_regular_file(dir / shard, ec)) {
        return not_found((dir / kIndexFile).string() + " names shard '" + shard + "', which is missing from " +
                         model_dir);
      }
    }
    files = index->shards;
    source = kIndexFile;
  } else if (fs::exists(dir / kSingleFile, ec)) {
    files.push_back(kSingleFile);
    source = kSingleFile;
  } else {
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      if (entry.is_regular_file() && entry.path().extension() == ".safetensors") {
        files.push_back(entry.path().filename().string());
      }
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) {
      return not_found(model_dir + ": no safetensors weights (looked for " + kIndexFile + ", " + kSingleFile +
                       " and *.safetensors)");
    }
    source = files.size() == 1 ? files[0] : (dir / "*.safetensors").string();
  }

  std::unique_ptr<SafetensorsCheckpoint> checkpoint(new SafetensorsCheckpoint());
  checkpoint->source_ = source;
  for (const std::string& file : files) {
    auto mapping = std::make_unique<Mapping>();
    mapping->path = (dir / file).string();
    mapping->file_name = file;
    STRATA_RETURN_IF_ERROR(map_file(mapping->path, mapping->base, mapping->size));
    const Mapping& m = *checkpoint->mappings_.emplace_back(std::move(mapping));
    STRATA_RETURN_IF_ERROR(parse_header(m.path, m.file_name, m.base, m.size, checkpoint->tensors_));
  }

  auto& tensors = checkpoint->tensors_;
  std::sort(tensors.begin(), tensors.end(), [](const TensorInfo& a, const TensorInfo& b) { return a.name < b.name; });
  for (size_t i = 1; i < tensors.size(); ++i) {
    if (tensors[i].name == tensors[i - 1].name) {
      return data_loss(model_dir + ": tensor '" + tensors[i].name + "' appears in both " + tensors[i - 1].file +
                       " and " + tensors[i].file);
    }
  }
  if (index) {
    for (const auto& [name, shard] : index->weight_map) {
      const TensorInfo* info = checkpoint->find(name);
      if (!info || info->file != shard) {
        return data_loss((dir / kIndexFile).string() + " puts tensor '" + name + "' in " + shard +
                         ", but that file does not contain it");
      }
    }
  }
  return checkpoint;
}

const TensorInfo* SafetensorsCheckpoint::find(const std::string& name) const {
  auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                             [](const TensorInfo& t, const std::string& n) { return t.name < n; });
  if (it == tensors_.end() || it->name != name) return nullptr;
  return &*it;
}

std::vector<std::string> SafetensorsCheckpoint::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const TensorInfo& t : tensors_) out.push_back(t.name);
  return out;
}

Result<std::vector<float>> SafetensorsCheckpoint::read_f32(const std::string& name,
                                                           const std::vector<int64_t>& expected_shape) const {
  const TensorInfo* info = find(name);
  if (!info) return not_found(source_ + ": tensor '" + name + "' not found");
  if (info->shape != expected_shape) {
    return invalid_argument(info->file + ": tensor '" + name + "' has shape " + shape_string(info->shape) +
                            ", expected " + shape_string(expected_shape));
  }
  const size_t n = static_cast<size_t>(info->numel());
  std::vector<float> out(n);
  const std::byte* src = info->data;
  switch (info->dtype) {
    case DType::kF32:
      if (n) std::memcpy(out.data(), src, n * sizeof(float));
      break;
    case DType::kBF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t bits;
        std::memcpy(&bits, src + 2 * i, 2);
        out[i] = bf16_to_f32(bits);
      }
      break;
    case DType::kF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t bits;
        std::memcpy(&bits, src + 2 * i, 2);
        out[i] = f16_to_f32(bits);
      }
      break;
  }
  return out;
}

size_t SafetensorsCheckpoint::total_bytes() const {
  size_t total = 0;
  for (const TensorInfo& t : tensors_) total += t.nbytes;
  return total;
}

}  // namespace strata
