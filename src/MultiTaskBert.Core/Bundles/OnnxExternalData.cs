namespace MultiTaskBert.Core.Bundles;

/// <summary>
/// Finds tensors that keep their data outside the ONNX file (<c>data_location: EXTERNAL</c> or
/// <c>external_data</c> entries). ONNX Runtime would read such data from any path the file names
/// (a sibling head, <c>../</c>, an absolute path), so the SHA-256 of the file would not cover the
/// weights that run. The bundle refuses them: a trunk or head is exactly the bytes that were hashed.
/// Reads the protobuf wire format directly (schema-directed, only the messages that can hold
/// tensors), streaming with seeks over everything else, so memory stays small for large trunks.
/// </summary>
public static class OnnxExternalData
{
    // Deeper nesting than any real graph (subgraphs of If/Loop); a hostile file cannot overflow the stack.
    private const int MaxDepth = 64;

    private enum Message
    {
        Model,
        Graph,
        Node,
        Attribute,
        Function,
        TrainingInfo,
        Tensor,
        SparseTensor,
        StringStringEntry,
    }

    /// <summary>
    /// Describes the first tensor with external data (its name and the file it points at), or
    /// null when every tensor is stored inside the file. Throws <see cref="InvalidDataException"/>
    /// when the file is not a well-formed protobuf message.
    /// </summary>
    public static string? FindFirst(Stream onnx)
    {
        ArgumentNullException.ThrowIfNull(onnx);
        var reader = new Reader(onnx);
        return reader.Scan(Message.Model, onnx.Length, depth: 0, out _);
    }

    private sealed class Reader(Stream stream)
    {
        /// <summary>Scans one message up to <paramref name="end"/>; for tensors, also returns its name.</summary>
        public string? Scan(Message message, long end, int depth, out string? tensorName)
        {
            if (depth > MaxDepth)
            {
                throw new InvalidDataException($"messages nested deeper than {MaxDepth}");
            }

            var seen = new Seen();
            while (stream.Position < end)
            {
                ulong key = ReadVarint(end);
                int field = (int)(key >> 3);
                int wireType = (int)(key & 7);
                switch (wireType)
                {
                    case 0:
                        ulong value = ReadVarint(end);
                        if (message == Message.Tensor && field == 14 && value == 1)
                        {
                            seen.External = true; // TensorProto.data_location = EXTERNAL
                        }

                        break;
                    case 1:
                        Skip(8, end);
                        break;
                    case 5:
                        Skip(4, end);
                        break;
                    case 2:
                        ScanField(message, field, depth, end, seen);
                        break;
                    default:
                        throw new InvalidDataException($"wire type {wireType} at byte {stream.Position} is not valid in an ONNX model");
                }
            }

            if (stream.Position != end)
            {
                throw new InvalidDataException($"a field runs past the end of its message at byte {end}");
            }

            tensorName = seen.TensorName;
            if (message == Message.StringStringEntry)
            {
                return seen.EntryKey == "location" ? seen.EntryValue : null;
            }

            return message == Message.Tensor && seen.External ? seen.Location ?? "(no location given)" : seen.Found;
        }

        /// <summary>One length-delimited field: a tensor's name or external data, a string entry's key or value, or a child message to scan.</summary>
        private void ScanField(Message message, int field, int depth, long end, Seen seen)
        {
            ulong length = ReadVarint(end);
            if (length > (ulong)(end - stream.Position))
            {
                throw new InvalidDataException($"a field of {length} bytes runs past the end of its message at byte {stream.Position}");
            }

            long fieldEnd = stream.Position + (long)length;
            if (message == Message.Tensor && field == 8)
            {
                seen.TensorName = ReadString(length);
            }
            else if (message == Message.Tensor && field == 13)
            {
                seen.External = true; // TensorProto.external_data
                seen.Location ??= Scan(Message.StringStringEntry, fieldEnd, depth + 1, out _);
            }
            else if (message == Message.StringStringEntry && field is 1 or 2)
            {
                // StringStringEntryProto: key = 1, value = 2; the value of key "location" is the file.
                _ = field == 1 ? seen.EntryKey = ReadString(length) : seen.EntryValue = ReadString(length);
            }
            else if (Child(message, field) is { } child)
            {
                string? inner = Scan(child, fieldEnd, depth + 1, out string? childTensor);
                seen.Found ??= child == Message.Tensor && inner is not null ? Describe(childTensor, inner) : inner;
            }

            stream.Position = fieldEnd;
        }

        private static string Describe(string? tensor, string location) => $"tensor '{tensor ?? "(unnamed)"}' reads its data from '{location}'";

        /// <summary>What one message's fields said so far.</summary>
        private sealed class Seen
        {
            public string? TensorName { get; set; }
            public string? Found { get; set; }
            public string? Location { get; set; }
            public string? EntryKey { get; set; }
            public string? EntryValue { get; set; }
            public bool External { get; set; }
        }

        /// <summary>The fields, per message, that hold messages which can (transitively) hold tensors.</summary>
        private static Message? Child(Message message, int field) => (message, field) switch
        {
            (Message.Model, 7) => Message.Graph,                 // ModelProto.graph
            (Message.Model, 20) => Message.TrainingInfo,         // ModelProto.training_info
            (Message.Model, 25) => Message.Function,             // ModelProto.functions
            (Message.TrainingInfo, 1 or 2) => Message.Graph,     // initialization, algorithm
            (Message.Graph, 1) => Message.Node,                  // GraphProto.node
            (Message.Graph, 5) => Message.Tensor,                // GraphProto.initializer
            (Message.Graph, 15) => Message.SparseTensor,         // GraphProto.sparse_initializer
            (Message.Function, 7) => Message.Node,               // FunctionProto.node
            (Message.Function, 11) => Message.Attribute,         // FunctionProto.attribute_proto
            (Message.Node, 5) => Message.Attribute,              // NodeProto.attribute
            (Message.Attribute, 5 or 10) => Message.Tensor,      // t, tensors
            (Message.Attribute, 6 or 11) => Message.Graph,       // g, graphs
            (Message.Attribute, 22 or 23) => Message.SparseTensor, // sparse_tensor, sparse_tensors
            (Message.SparseTensor, 1 or 2) => Message.Tensor,    // values, indices
            _ => null,
        };

        private string ReadString(ulong length)
        {
            if (length > 4096)
            {
                return "(a name of " + length + " bytes)";
            }

            byte[] bytes = new byte[length];
            stream.ReadExactly(bytes);
            return System.Text.Encoding.UTF8.GetString(bytes);
        }

        private ulong ReadVarint(long end)
        {
            ulong result = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                if (stream.Position >= end)
                {
                    throw new InvalidDataException($"truncated varint at byte {stream.Position}");
                }

                int b = stream.ReadByte();
                if (b < 0)
                {
                    throw new InvalidDataException($"unexpected end of file at byte {stream.Position}");
                }

                result |= (ulong)(b & 0x7f) << shift;
                if ((b & 0x80) == 0)
                {
                    return result;
                }
            }

            throw new InvalidDataException($"varint longer than 10 bytes at byte {stream.Position}");
        }

        private void Skip(int bytes, long end)
        {
            if (end - stream.Position < bytes)
            {
                throw new InvalidDataException($"a fixed-size field runs past the end of its message at byte {stream.Position}");
            }

            stream.Position += bytes;
        }
    }
}
