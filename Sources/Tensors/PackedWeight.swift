import Foundation

/// A weight in the layout a backend's kernels read directly (oneDNN's blocked bf16 layouts), made once at the first
/// product and kept for the session, so no product repacks it.
public final class PackedWeight: @unchecked Sendable {
    let bytes: UnsafeMutableRawPointer
    let byteCount: Int
    /// The backend's description of the layout (oneDNN's memory descriptor), compared byte for byte.
    let layout: [UInt8]
    /// Writes the plain [out, in] rows back, for a product the packed layout cannot serve.
    let unpack: @Sendable (UnsafeRawPointer, UnsafeMutableRawPointer) -> Void

    init(byteCount: Int, layout: [UInt8], unpack: @escaping @Sendable (UnsafeRawPointer, UnsafeMutableRawPointer) -> Void) {
        bytes = .allocate(byteCount: max(64, byteCount), alignment: 64)
        (self.byteCount, self.layout, self.unpack) = (byteCount, layout, unpack)
    }

    deinit { bytes.deallocate() }
}

/// The bf16 rows of a weight, shared by its copies: plain [out, in] until a backend packs them, then only the packed
/// form (the plain copy is freed, so the weight is never held twice).
final class BF16Rows: @unchecked Sendable {
    private let lock = NSLock()
    private var plain: [UInt16]
    private var packedForm: PackedWeight?
    private var packingTried = false

    init(_ plain: [UInt16]) { self.plain = plain }

    var packed: PackedWeight? { lock.withLock { packedForm } }

    var byteCount: Int { lock.withLock { plain.count * 2 + (packedForm?.byteCount ?? 0) } }

    /// Runs `body` with the plain rows; a packed weight is unpacked into a temporary copy.
    func withPlain<R>(count: Int, _ body: (UnsafeRawPointer) throws -> R) rethrows -> R {
        let (rows, packed) = lock.withLock { (plain, packedForm) }
        guard let packed, rows.isEmpty else { return try rows.withUnsafeBytes { try body($0.baseAddress!) } }
        let copy = UnsafeMutableRawPointer.allocate(byteCount: max(2, count * 2), alignment: 64)
        defer { copy.deallocate() }
        packed.unpack(UnsafeRawPointer(packed.bytes), copy)
        return try body(UnsafeRawPointer(copy))
    }

    /// Packs once: `make` gets the plain rows and returns the packed form, or nil when packing would not change the
    /// layout (then it is not asked again). The caller serializes calls (the backend's lock).
    func packOnce(_ make: (UnsafeRawPointer) -> PackedWeight?) -> PackedWeight? {
        let (rows, tried, existing) = lock.withLock { (plain, packingTried, packedForm) }
        if let existing { return existing }
        if tried { return nil }
        let made = rows.withUnsafeBytes { make($0.baseAddress!) }
        lock.withLock {
            packingTried = true
            if let made {
                packedForm = made
                plain = []
            }
        }
        return made
    }
}
