namespace MultiTaskBert.Core.Inference;

/// <summary>Where sessions actually run after <see cref="InferenceDevice"/> was resolved.</summary>
public enum ExecutionTarget
{
    Cpu,
    Cuda,
}

/// <summary><c>Inference:Device = cuda</c> was asked for but CUDA cannot be used.</summary>
public sealed class InferenceDeviceUnavailableException(string message) : Exception(message);
