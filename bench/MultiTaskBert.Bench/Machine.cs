/// <summary>
/// The processor the figures were measured on. ONNX Runtime picks its matmul kernels, the int8 ones
/// above all, by the vector instructions present (AVX2, AVX-512, VNNI), so the same bundle runs at
/// different speeds on two machines: figures compare only with this line beside them.
/// </summary>
internal static class Machine
{
    private static readonly string[] VectorFlags = ["avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8"];

    public static string Describe()
    {
        const string cpuInfo = "/proc/cpuinfo";
        if (!File.Exists(cpuInfo))
        {
            return $"{Environment.ProcessorCount} logical CPUs";
        }

        string[] lines = File.ReadAllLines(cpuInfo);
        string model = Field(lines, "model name") ?? "unknown processor";
        HashSet<string> flags = [.. (Field(lines, "flags") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries)];
        string[] present = [.. VectorFlags.Where(flags.Contains)];
        return $"{model}, {Environment.ProcessorCount} logical CPUs, vector extensions: {(present.Length == 0 ? "none of " + string.Join("/", VectorFlags) : string.Join(" ", present))}";
    }

    private static string? Field(string[] lines, string name) =>
        lines.Where(l => l.StartsWith(name, StringComparison.Ordinal) && l.Contains(':', StringComparison.Ordinal))
            .Select(l => l[(l.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim())
            .FirstOrDefault();
}
