#include "et_reader.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/gzip_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <memory>

#include "common.h"
#include "et_def.pb.h"

namespace engine {

namespace {

NodeKind kindFromNumber(int type, NodeTypeNumbering numbering) {
  static const NodeKind upstream[] = {NodeKind::Invalid, NodeKind::Metadata, NodeKind::MemLoad, NodeKind::MemStore,
                                      NodeKind::Comp,    NodeKind::Send,     NodeKind::Recv,    NodeKind::Collective};
  static const NodeKind casys[] = {NodeKind::Invalid, NodeKind::Metadata, NodeKind::MemLoad,
                                   NodeKind::MemStore, NodeKind::PimComp,  NodeKind::Comp,
                                   NodeKind::Send,     NodeKind::Recv,     NodeKind::Collective};
  if (numbering == NodeTypeNumbering::Upstream && type >= 0 && type < 8) return upstream[type];
  if (numbering == NodeTypeNumbering::Casys && type >= 0 && type < 9) return casys[type];
  return NodeKind::Metadata;  // unknown numbers are rejected by the caller through `typeKnown`
}

bool typeKnown(int type, NodeTypeNumbering numbering) {
  return type >= 0 && type < (numbering == NodeTypeNumbering::Upstream ? 8 : 9);
}

// Integer value of a scalar attribute, whatever integer/bool field carries it.
bool integerValue(const ChakraProtoMsg::AttributeProto& a, int64_t* out) {
  using A = ChakraProtoMsg::AttributeProto;
  switch (a.value_case()) {
    case A::kInt32Val: *out = a.int32_val(); return true;
    case A::kInt64Val: *out = a.int64_val(); return true;
    case A::kUint32Val: *out = a.uint32_val(); return true;
    case A::kUint64Val: *out = static_cast<int64_t>(a.uint64_val()); return true;
    case A::kSint32Val: *out = a.sint32_val(); return true;
    case A::kSint64Val: *out = a.sint64_val(); return true;
    case A::kFixed32Val: *out = a.fixed32_val(); return true;
    case A::kFixed64Val: *out = static_cast<int64_t>(a.fixed64_val()); return true;
    case A::kSfixed32Val: *out = a.sfixed32_val(); return true;
    case A::kSfixed64Val: *out = a.sfixed64_val(); return true;
    case A::kBoolVal: *out = a.bool_val() ? 1 : 0; return true;
    default: return false;
  }
}

void readAttributes(const ChakraProtoMsg::Node& proto, EtNode& node, const std::string& path) {
  for (const auto& a : proto.attr()) {
    const std::string& name = a.name();
    if (name == "involved_dim") {
      if (!a.has_bool_list()) fail(kExitInput, path + ": node " + std::to_string(node.id) + ": attribute involved_dim must be a bool_list");
      node.involvedDim.assign(a.bool_list().values().begin(), a.bool_list().values().end());
      continue;
    }
    int64_t value = 0;
    bool isInteger = integerValue(a, &value);
    if (name == "is_cpu_op") node.isCpuOp = isInteger && value != 0;
    else if (name == "is_pim_op") node.isPimOp = isInteger && value != 0;
    else if (!isInteger) continue;  // other attributes are informative only
    else if (name == "num_ops") node.numOps = value;
    else if (name == "tensor_size") node.tensorSize = static_cast<uint64_t>(value);
    else if (name == "comm_type") node.commType = value;
    else if (name == "comm_size") node.commSize = value;
    else if (name == "comm_src") node.commSrc = static_cast<int>(value);
    else if (name == "comm_dst") node.commDst = static_cast<int>(value);
    else if (name == "comm_tag") node.commTag = static_cast<int>(value);
    else if (name == "comm_priority") node.commPriority = static_cast<int>(value);
    else if (name == "memory_tier") node.memoryTier = value;
  }
}

// Number of length-prefixed records in an uncompressed trace (to size the node vector once).
size_t countRecords(const std::string& bytes) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()), static_cast<int>(bytes.size()));
  size_t count = 0;
  uint32_t length = 0;
  while (in.ReadVarint32(&length) && in.Skip(static_cast<int>(length))) ++count;
  return count;
}

}  // namespace

std::vector<EtNode> readEtFile(const std::string& path, NodeTypeNumbering numbering) {
  std::string bytes = readTextFile(path, "workload file");
  google::protobuf::io::ArrayInputStream raw(bytes.data(), static_cast<int>(bytes.size()));
  std::unique_ptr<google::protobuf::io::GzipInputStream> gzip;
  google::protobuf::io::ZeroCopyInputStream* source = &raw;
  if (bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f && static_cast<unsigned char>(bytes[1]) == 0x8b) {
    gzip = std::make_unique<google::protobuf::io::GzipInputStream>(&raw);
    source = gzip.get();
  }
  google::protobuf::io::CodedInputStream in(source);
  in.SetTotalBytesLimit(INT32_MAX);

  std::vector<EtNode> nodes;
  if (!gzip) nodes.reserve(countRecords(bytes));
  ChakraProtoMsg::Node proto;  // reused: keeps its allocations between records
  bool metadataSeen = false;
  uint32_t length = 0;
  auto truncated = [&] { fail(kExitInput, path + ": truncated record at byte " + std::to_string(in.CurrentPosition())); };
  while (in.ReadVarint32(&length)) {
    if (!gzip && static_cast<size_t>(in.CurrentPosition()) + length > bytes.size()) truncated();
    auto limit = in.PushLimit(static_cast<int>(length));
    auto where = [&] { return path + " record " + std::to_string(nodes.size() + (metadataSeen ? 1 : 0)); };
    if (!metadataSeen) {
      ChakraProtoMsg::GlobalMetadata metadata;
      if (!metadata.ParseFromCodedStream(&in) || !in.ConsumedEntireMessage()) fail(kExitInput, where() + ": invalid GlobalMetadata record");
      metadataSeen = true;
    } else {
      proto.Clear();
      if (!proto.ParseFromCodedStream(&in) || !in.ConsumedEntireMessage()) fail(kExitInput, where() + ": invalid Node record");
      EtNode node;
      node.id = proto.id();
      node.name = proto.name();
      int type = static_cast<int>(proto.type());
      if (!typeKnown(type, numbering)) fail(kExitInput, path + ": node " + std::to_string(node.id) + " has unknown NodeType " + std::to_string(type));
      node.kind = kindFromNumber(type, numbering);
      node.durationNs = proto.duration_micros();
      node.dataDeps.assign(proto.data_deps().begin(), proto.data_deps().end());
      readAttributes(proto, node, path);
      nodes.push_back(std::move(node));
    }
    in.PopLimit(limit);
  }
  if (!gzip && static_cast<size_t>(in.CurrentPosition()) != bytes.size()) truncated();
  if (!metadataSeen) fail(kExitInput, path + ": empty file (no GlobalMetadata record)");
  return nodes;
}

}  // namespace engine
