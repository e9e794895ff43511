import CDNNL
import Foundation

/// oneDNN (DNNL 2.6, OpenMP runtime): matmul and convolution primitives, created once per
/// descriptor and cached. bf16 operands accumulate in fp32 and write fp32. oneDNN 2.6 has bf16
/// kernels only from AVX-512 on; on a CPU without them (`nativeBF16 == false`) bf16 operands are
/// widened to fp32 (exact) and multiplied in fp32: the same numbers, fp32 speed.
public final class OneDNNBackend: ComputeBackend, @unchecked Sendable {
    public let name = "onednn"
    public let threads: Int
    /// Whether this CPU runs bf16 products natively (checked once by building a bf16 matmul).
    public let nativeBF16: Bool
    private let engine: dnnl_engine_t
    private let stream: dnnl_stream_t
    private struct Primitive: @unchecked Sendable {
        let primitive: dnnl_primitive_t
        var descriptors: [Int32: dnnl_memory_desc_t]  // DNNL_ARG_* → memory descriptor
        var scratchpadBytes = 0
    }
    /// The scratchpad descriptor of the primitive `create` made last (read right after, under `lock`).
    private var scratchpadDescriptor = dnnl_memory_desc_t()
    private var scratchpad = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    // Execution is serialized: the engine runs one product at a time and each uses every thread.
    private let lock = NSLock()
    private var cache: [AnyHashable: Primitive] = [:]
    private var unsupported: Set<AnyHashable> = []
    private var scratch = [UnsafeMutableBufferPointer<Float>](repeating: UnsafeMutableBufferPointer(start: nil, count: 0), count: 2)
    private var bf16Native = 0, bf16Widened = 0, unpacked = 0, fused = 0

    /// How many bf16 products (matmuls and convolutions) ran on oneDNN's bf16 kernels and how many were widened
    /// to fp32, so tests can tell which path a bf16 run really took.
    public var bf16Products: (native: Int, widened: Int) { lock.withLock { (bf16Native, bf16Widened) } }
    /// How many products had to unpack a packed weight because its layout could not serve their shape.
    public var unpackedProducts: Int { lock.withLock { unpacked } }
    /// How many products ran with a fused GELU / bf16 output (`fusedLinear`).
    public var fusedProducts: Int { lock.withLock { fused } }

    public init(threads: Int) throws(BackendError) {
        InstructionSet.capOneDNN
        self.threads = max(1, threads)
        var engine: dnnl_engine_t?
        try check(dnnl_engine_create(&engine, dnnl_cpu, 0), "create the CPU engine")
        var stream: dnnl_stream_t?
        do throws(BackendError) {
            try check(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags.rawValue), "create a stream")
        } catch {
            dnnl_engine_destroy(engine)
            throw error
        }
        self.engine = engine!
        self.stream = stream!
        nativeBF16 = OneDNNBackend.canBuildBF16Matmul(engine: engine!)
    }

    /// The instruction set oneDNN dispatches to, e.g. "AVX2" or "AVX-512 with bf16".
    public static var instructionSet: String {
        InstructionSet.capOneDNN
        switch dnnl_get_effective_cpu_isa() {
        case dnnl_cpu_isa_sse41: return "SSE4.1"
        case dnnl_cpu_isa_avx: return "AVX"
        case dnnl_cpu_isa_avx2: return "AVX2"
        case dnnl_cpu_isa_avx512_core: return "AVX-512"
        case dnnl_cpu_isa_avx512_core_vnni: return "AVX-512 VNNI"
        case dnnl_cpu_isa_avx512_core_bf16: return "AVX-512 with bf16"
        case dnnl_cpu_isa_avx512_core_amx: return "AVX-512 with AMX"
        default: return "other (\(dnnl_get_effective_cpu_isa().rawValue))"
        }
    }

    private static func canBuildBF16Matmul(engine: dnnl_engine_t) -> Bool {
        var src = dnnl_memory_desc_t(), weights = dnnl_memory_desc_t(), dst = dnnl_memory_desc_t()
        let dims: [Int64] = [16, 16] + [Int64](repeating: 0, count: 10)
        guard dnnl_memory_desc_init_by_tag(&src, 2, dims, dnnl_bf16, dnnl_ab) == dnnl_success,
              dnnl_memory_desc_init_by_tag(&weights, 2, dims, dnnl_bf16, dnnl_ab) == dnnl_success,
              dnnl_memory_desc_init_by_tag(&dst, 2, dims, dnnl_f32, dnnl_ab) == dnnl_success else { return false }
        var desc = dnnl_matmul_desc_t()
        guard dnnl_matmul_desc_init(&desc, &src, &weights, nil, &dst) == dnnl_success else { return false }
        var pd: dnnl_primitive_desc_t?
        let status = withUnsafePointer(to: &desc) { dnnl_primitive_desc_create(&pd, UnsafeRawPointer($0), nil, engine, nil) }
        if status == dnnl_success { dnnl_primitive_desc_destroy(pd) }
        return status == dnnl_success
    }

    deinit {
        for entry in cache.values { dnnl_primitive_destroy(entry.primitive) }
        for buffer in scratch { buffer.deallocate() }
        scratchpad.deallocate()
        dnnl_stream_destroy(stream)
        dnnl_engine_destroy(engine)
    }

    public static var version: String {
        guard let v = dnnl_version() else { return "unknown" }
        return "\(v.pointee.major).\(v.pointee.minor).\(v.pointee.patch)"
    }

    public func gemm(_ d: GemmDescriptor, a: UnsafeRawPointer, b: UnsafeRawPointer,
                     bias: UnsafePointer<Float>?, c: UnsafeMutablePointer<Float>) {
        precondition(d.hasBias == (bias != nil), "gemm: bias pointer does not match the descriptor")
        lock.withLock {
            var (key, a, b) = (d, a, b)
            if d.operandType == .bf16 && !(nativeBF16 && primitive(for: d) { try self.makeMatmul(d) }) {
                bf16Widened += 1
                key.operandType = .fp32
                key.lda = d.k
                key.ldb = d.transposeB ? d.k : d.n
                a = widened(0, a, rows: d.m, columns: d.k, leading: d.lda)
                b = widened(1, b, rows: d.transposeB ? d.n : d.k, columns: d.transposeB ? d.k : d.n, leading: d.ldb)
            }
            if key.operandType == .bf16 { bf16Native += 1 }
            var args: [(Int32, UnsafeRawPointer)] = [(DNNL_ARG_SRC, a), (DNNL_ARG_WEIGHTS, b), (DNNL_ARG_DST, UnsafeRawPointer(c))]
            if let bias { args.append((DNNL_ARG_BIAS, UnsafeRawPointer(bias))) }
            execute(key: key, args: args) { try self.makeMatmul(key) }
        }
    }

    /// bf16 weights prepared with `prepare` (on a CPU with bf16 kernels) are multiplied in the layout oneDNN's kernel
    /// chose for them; others in their plain rows.
    public func linear(_ d: GemmDescriptor, a: UnsafeRawPointer, weight: Weight, bias: UnsafePointer<Float>?,
                       c: UnsafeMutablePointer<Float>) {
        precondition(d.hasBias == (bias != nil), "gemm: bias pointer does not match the descriptor")
        guard let packed = weight.bf16.packed else { return weight.withOperand { gemm(d, a: a, b: $0, bias: bias, c: c) } }
        lock.withLock {
            let key = PackedKey(descriptor: d, layout: packed.layout)
            var args: [(Int32, UnsafeRawPointer)] = [(DNNL_ARG_SRC, a), (DNNL_ARG_DST, UnsafeRawPointer(c))]
            if let bias { args.append((DNNL_ARG_BIAS, UnsafeRawPointer(bias))) }
            bf16Native += 1
            if primitive(for: key, make: { try self.makeMatmul(d, weights: packed.layout) }) {
                execute(key: key, args: args + [(DNNL_ARG_WEIGHTS, UnsafeRawPointer(packed.bytes))]) { try self.makeMatmul(d, weights: packed.layout) }
                return
            }
            // A shape the packed layout cannot serve: the plain rows, unpacked into scratch.
            unpacked += 1
            let plain = scratchBytes(1, d.n * d.k * 2)
            reorder(from: layoutDescriptor(packed.layout), UnsafeRawPointer(packed.bytes), to: try? plainWeights(d), plain)
            execute(key: d, args: args + [(DNNL_ARG_WEIGHTS, UnsafeRawPointer(plain))]) { try self.makeMatmul(d) }
        }
    }

    /// Packs a bf16 weight into the layout oneDNN's kernel chooses (`format_tag_any` and one reorder), for a weight
    /// used many times (the MMDiT's, every step). Text encoders and the VAE run each weight once or twice per image,
    /// where the reorder would cost more than it saves (T5-XXL's encode took 2× as long packing at first use).
    public func prepare(_ weight: Weight, as d: GemmDescriptor) { _ = packed(weight, for: d) }

    /// GELU as a oneDNN post-op and a bf16 destination, so the hidden layer of an MLP is written once, ready for the
    /// next product. bf16 operands only where this CPU multiplies bf16 natively.
    public func fusedLinear(_ d: GemmDescriptor, a: UnsafeRawPointer, weight: Weight, bias: UnsafePointer<Float>?,
                            output: UnsafeMutableRawPointer) -> Bool {
        precondition(d.hasBias == (bias != nil), "gemm: bias pointer does not match the descriptor")
        guard d.transposeB, d.alpha == 1, !d.accumulate, weight.format != .int8, d.operandType == weight.precision.operandType,
              d.operandType == .fp32 || nativeBF16, d.outputType == .fp32 || nativeBF16 else { return false }
        let packed = weight.bf16.packed
        return lock.withLock {
            let key: AnyHashable = packed.map { PackedKey(descriptor: d, layout: $0.layout) } ?? AnyHashable(d)
            guard primitive(for: key, make: { try self.makeMatmul(d, weights: packed?.layout) }) else { return false }
            if d.operandType == .bf16 { bf16Native += 1 }
            fused += 1
            var args: [(Int32, UnsafeRawPointer)] = [(DNNL_ARG_SRC, a), (DNNL_ARG_DST, UnsafeRawPointer(output))]
            if let bias { args.append((DNNL_ARG_BIAS, UnsafeRawPointer(bias))) }
            if let packed {
                args.append((DNNL_ARG_WEIGHTS, UnsafeRawPointer(packed.bytes)))
                execute(key: key, args: args) { try self.makeMatmul(d, weights: packed.layout) }
            } else {
                weight.withOperand { w in execute(key: key, args: args + [(DNNL_ARG_WEIGHTS, w)]) { try self.makeMatmul(d) } }
            }
            return true
        }
    }

    /// The weight's packed form (made at the first call), or nil when it stays plain.
    private func packed(_ weight: Weight, for d: GemmDescriptor) -> PackedWeight? {
        guard nativeBF16, d.operandType == .bf16, weight.format == .bf16, d.transposeB, d.ldb == d.k, d.alpha == 1, !d.accumulate
        else { return nil }
        return lock.withLock { weight.bf16.packOnce { plain in try? pack(plain, for: d) } }
    }

    /// The packed form of a bf16 weight for products like `d`, or nil when oneDNN keeps the plain layout. Called with
    /// `lock` held.
    private func pack(_ plain: UnsafeRawPointer, for d: GemmDescriptor) throws(BackendError) -> PackedWeight.Staged? {
        var src = try describe([d.m, d.k], [d.lda, 1], dnnl_bf16)
        var weights = dnnl_memory_desc_t()
        let dims: [Int64] = [Int64(d.k), Int64(d.n)] + [Int64](repeating: 0, count: 10)
        try check(dnnl_memory_desc_init_by_tag(&weights, 2, dims, dnnl_bf16, dnnl_format_tag_any), "describe packed weights")
        var dst = try describe([d.m, d.n], [d.ldc, 1], dnnl_f32)
        var desc = dnnl_matmul_desc_t()
        try check(dnnl_matmul_desc_init(&desc, &src, &weights, nil, &dst), "describe matmul")
        var pd: dnnl_primitive_desc_t?
        let status = withUnsafePointer(to: &desc) { dnnl_primitive_desc_create(&pd, UnsafeRawPointer($0), nil, engine, nil) }
        try check(status, "find a matmul for packed weights")
        defer { dnnl_primitive_desc_destroy(pd) }
        var chosen = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0).pointee
        var plainLayout = try plainWeights(d)
        if dnnl_memory_desc_equal(&chosen, &plainLayout) != 0 { return nil }
        let layout = withUnsafeBytes(of: chosen) { Array($0) }
        let size = dnnl_memory_desc_get_size(&chosen)
        let staged = scratchBytes(1, size)
        reorder(from: plainLayout, plain, to: chosen, staged)
        return PackedWeight.Staged(bytes: UnsafeRawPointer(staged), byteCount: size, layout: layout) { [self] from, to in
            lock.withLock { reorder(from: layoutDescriptor(layout), from, to: try? plainWeights(d), to) }
        }
    }

    private func plainWeights(_ d: GemmDescriptor) throws(BackendError) -> dnnl_memory_desc_t {
        try describe([d.k, d.n], [1, d.ldb], dnnl_bf16)
    }

    private func layoutDescriptor(_ bytes: [UInt8]) -> dnnl_memory_desc_t {
        bytes.withUnsafeBytes { $0.loadUnaligned(as: dnnl_memory_desc_t.self) }
    }

    /// Copies `from` (layout `source`) to `to` (layout `target`) with a oneDNN reorder; called with `lock` held.
    private func reorder(from source: dnnl_memory_desc_t, _ from: UnsafeRawPointer, to target: dnnl_memory_desc_t?,
                         _ to: UnsafeMutableRawPointer) {
        guard var target else { preconditionFailure("oneDNN: no plain layout for an unpack") }
        var source = source
        var pd: dnnl_primitive_desc_t?
        var reorder: dnnl_primitive_t?
        var memories: [dnnl_memory_t?] = [nil, nil]
        defer {
            for m in memories { dnnl_memory_destroy(m) }
            dnnl_primitive_destroy(reorder)
            dnnl_primitive_desc_destroy(pd)
        }
        guard dnnl_reorder_primitive_desc_create(&pd, &source, engine, &target, engine, nil) == dnnl_success,
              dnnl_primitive_create(&reorder, pd) == dnnl_success,
              dnnl_memory_create(&memories[0], &source, engine, UnsafeMutableRawPointer(mutating: from)) == dnnl_success,
              dnnl_memory_create(&memories[1], &target, engine, to) == dnnl_success else {
            preconditionFailure("oneDNN: could not reorder a weight into its packed layout")
        }
        let args = [dnnl_exec_arg_t(arg: DNNL_ARG_FROM, memory: memories[0]), dnnl_exec_arg_t(arg: DNNL_ARG_TO, memory: memories[1])]
        omp_set_num_threads(Int32(threads))
        precondition(dnnl_primitive_execute(reorder, stream, 2, args) == dnnl_success && dnnl_stream_wait(stream) == dnnl_success,
                     "oneDNN: a weight reorder failed")
    }

    /// Raw scratch of at least `bytes` in `slot` (called with `lock` held).
    private func scratchBytes(_ slot: Int, _ bytes: Int) -> UnsafeMutableRawPointer {
        let floats = (bytes + 3) / 4
        if scratch[slot].count < floats {
            scratch[slot].deallocate()
            scratch[slot] = .allocate(capacity: floats)
        }
        return UnsafeMutableRawPointer(scratch[slot].baseAddress!)
    }

    public func conv2d(_ d: ConvDescriptor, input: UnsafeRawPointer, weight: UnsafeRawPointer,
                       bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>) {
        precondition(d.hasBias == (bias != nil), "conv2d: bias pointer does not match the descriptor")
        lock.withLock {
            var (key, input, weight) = (d, input, weight)
            if d.operandType == .bf16 && !(nativeBF16 && primitive(for: d) { try self.makeConvolution(d) }) {
                bf16Widened += 1
                key.operandType = .fp32
                input = widened(0, input, rows: 1, columns: d.batch * d.inChannels * d.height * d.width, leading: 0)
                weight = widened(1, weight, rows: 1, columns: d.outChannels * d.inChannels * d.kernelHeight * d.kernelWidth, leading: 0)
            }
            if key.operandType == .bf16 { bf16Native += 1 }
            var args: [(Int32, UnsafeRawPointer)] = [(DNNL_ARG_SRC, input), (DNNL_ARG_WEIGHTS, weight), (DNNL_ARG_DST, UnsafeRawPointer(output))]
            if let bias { args.append((DNNL_ARG_BIAS, UnsafeRawPointer(bias))) }
            execute(key: key, args: args) { try self.makeConvolution(key) }
        }
    }

    /// Widens a bf16 operand into reusable scratch `slot` (called with `lock` held). Reusing the buffers
    /// avoids fresh allocations of up to hundreds of MB, with their page faults, on every product.
    private func widened(_ slot: Int, _ p: UnsafeRawPointer, rows: Int, columns: Int, leading: Int) -> UnsafeRawPointer {
        let needed = rows * columns
        if scratch[slot].count < needed {
            scratch[slot].deallocate()
            scratch[slot] = .allocate(capacity: needed)
        }
        widenBF16(p, rows: rows, columns: columns, leading: leading, into: scratch[slot].baseAddress!, threads: threads)
        return UnsafeRawPointer(scratch[slot].baseAddress!)
    }

    /// Whether a bf16 primitive exists (or can be made) for `key`; one oneDNN cannot build is remembered and its
    /// products widened to fp32 instead. The caller holds `lock`.
    private func primitive(for key: AnyHashable, make: () throws -> Primitive) -> Bool {
        if cache[key] != nil { return true }
        if unsupported.contains(key) { return false }
        omp_set_num_threads(ompThreads(for: key))
        guard let made = try? make() else {
            unsupported.insert(key)
            return false
        }
        cache[key] = made
        return true
    }

    /// Products with fewer multiply-adds than this run on the calling thread alone (about 0.2 ms of one core's
    /// AVX-512 work): waking a second OpenMP thread for them costs more than it saves. With the passive wait policy
    /// (OpenMPWaitPolicy) each parallel region is a futex wake and a sleep per thread; the demo model's training
    /// step (width 128, 64 image + 109 text tokens: every product below 8·10⁶) ran 0.13 s on two threads against
    /// 0.071 s on one, with about 2,600 voluntary context switches per step (models/sd3-demo/concepts/README.md).
    public static let serialProductLimit = 1 << 23

    /// The OpenMP threads for a primitive: one for small matmuls, else the engine's. Set before a primitive is
    /// created as well as before it runs, as some oneDNN kernels fix their thread partition when created.
    private func ompThreads(for key: AnyHashable) -> Int32 {
        let d = (key.base as? GemmDescriptor) ?? (key.base as? PackedKey)?.descriptor
        if let d, d.m * d.n * d.k < Self.serialProductLimit { return 1 }
        return Int32(threads)
    }

    /// Runs a cached (or new) primitive; the caller holds `lock`.
    private func execute(key: AnyHashable, args: [(Int32, UnsafeRawPointer)], make: () throws -> Primitive) {
        // OpenMP's thread count is per calling thread: set it on every call.
        omp_set_num_threads(ompThreads(for: key))
        let entry: Primitive
        if let cached = cache[key] {
            entry = cached
        } else {
            do { entry = try make() } catch { fatalError("oneDNN: \(error)") }
            cache[key] = entry
        }
        var memories: [dnnl_memory_t?] = []
        defer { for m in memories { dnnl_memory_destroy(m) } }
        var execArgs: [dnnl_exec_arg_t] = []
        var args = args
        if entry.scratchpadBytes > 0 {
            if scratchpad.count < entry.scratchpadBytes {
                scratchpad.deallocate()
                scratchpad = .allocate(byteCount: entry.scratchpadBytes, alignment: 64)
            }
            args.append((DNNL_ARG_SCRATCHPAD, UnsafeRawPointer(scratchpad.baseAddress!)))
        }
        for (arg, pointer) in args {
            var desc = entry.descriptors[arg]!
            var memory: dnnl_memory_t?
            let status = dnnl_memory_create(&memory, &desc, engine, UnsafeMutableRawPointer(mutating: pointer))
            precondition(status == dnnl_success, "oneDNN: memory_create failed (\(status))")
            memories.append(memory)
            execArgs.append(dnnl_exec_arg_t(arg: arg, memory: memory))
        }
        var status = dnnl_primitive_execute(entry.primitive, stream, Int32(execArgs.count), execArgs)
        precondition(status == dnnl_success, "oneDNN: execute failed (\(status))")
        status = dnnl_stream_wait(stream)
        precondition(status == dnnl_success, "oneDNN: stream wait failed (\(status))")
    }

    private func dataType(_ t: OperandType) -> dnnl_data_type_t { t == .fp32 ? dnnl_f32 : dnnl_bf16 }

    private func describe(_ dims: [Int], _ strides: [Int], _ type: dnnl_data_type_t) throws(BackendError) -> dnnl_memory_desc_t {
        var desc = dnnl_memory_desc_t()
        let d = dims.map { Int64($0) } + [Int64](repeating: 0, count: 12 - dims.count)
        let s = strides.map { Int64($0) } + [Int64](repeating: 0, count: 12 - strides.count)
        try check(dnnl_memory_desc_init_by_strides(&desc, Int32(dims.count), d, type, s), "describe memory \(dims)")
        return desc
    }

    /// A matmul for `d`; `weights` names a packed layout (a memory descriptor's bytes) instead of the plain one.
    private func makeMatmul(_ d: GemmDescriptor, weights packed: [UInt8]? = nil) throws(BackendError) -> Primitive {
        let type = dataType(d.operandType)
        var src = try describe([d.m, d.k], [d.lda, 1], type)
        var weights: dnnl_memory_desc_t
        if let packed { weights = layoutDescriptor(packed) }
        else { weights = d.transposeB ? try describe([d.k, d.n], [1, d.ldb], type) : try describe([d.k, d.n], [d.ldb, 1], type) }
        var dst = try describe([d.m, d.n], [d.ldc, 1], dataType(d.outputType))
        var bias = try describe([1, d.n], [d.n, 1], dnnl_f32)
        var desc = dnnl_matmul_desc_t()
        if d.hasBias {
            try check(dnnl_matmul_desc_init(&desc, &src, &weights, &bias, &dst), "describe matmul")
        } else {
            try check(dnnl_matmul_desc_init(&desc, &src, &weights, nil, &dst), "describe matmul")
        }
        let primitive = try withAttributes(alpha: d.alpha, accumulate: d.accumulate, geluTanh: d.geluTanh) { attr throws(BackendError) in
            try create(&desc, attr, "matmul \(d.m)×\(d.n)×\(d.k) \(d.operandType)")
        }
        return withScratchpad(Primitive(primitive: primitive, descriptors: [DNNL_ARG_SRC: src, DNNL_ARG_WEIGHTS: weights, DNNL_ARG_DST: dst]),
                              bias: d.hasBias ? bias : nil)
    }

    private func makeConvolution(_ d: ConvDescriptor) throws(BackendError) -> Primitive {
        let type = dataType(d.operandType)
        let (h, w, oh, ow) = (d.height, d.width, d.outHeight, d.outWidth)
        let (ci, co, kh, kw) = (d.inChannels, d.outChannels, d.kernelHeight, d.kernelWidth)
        var src = try describe([d.batch, ci, h, w], [ci * h * w, h * w, w, 1], type)
        var weights = try describe([co, ci, kh, kw], [ci * kh * kw, kh * kw, kw, 1], type)
        var dst = try describe([d.batch, co, oh, ow], [co * oh * ow, oh * ow, ow, 1], dnnl_f32)
        var bias = try describe([co], [1], dnnl_f32)
        var desc = dnnl_convolution_desc_t()
        let strides: [Int64] = [Int64(d.strideY), Int64(d.strideX)] + [Int64](repeating: 0, count: 10)
        let padL: [Int64] = [Int64(d.padTop), Int64(d.padLeft)] + [Int64](repeating: 0, count: 10)
        let padR: [Int64] = [Int64(d.padBottom), Int64(d.padRight)] + [Int64](repeating: 0, count: 10)
        let status = d.hasBias
            ? dnnl_convolution_forward_desc_init(&desc, dnnl_forward_inference, dnnl_convolution_direct, &src, &weights, &bias, &dst, strides, padL, padR)
            : dnnl_convolution_forward_desc_init(&desc, dnnl_forward_inference, dnnl_convolution_direct, &src, &weights, nil, &dst, strides, padL, padR)
        try check(status, "describe convolution")
        let primitive = try withAttributes(alpha: 1, accumulate: false) { attr throws(BackendError) in
            try create(&desc, attr, "convolution \(ci)→\(co) \(kh)×\(kw) on \(h)×\(w) \(d.operandType)")
        }
        return withScratchpad(Primitive(primitive: primitive, descriptors: [DNNL_ARG_SRC: src, DNNL_ARG_WEIGHTS: weights, DNNL_ARG_DST: dst]),
                              bias: d.hasBias ? bias : nil)
    }

    private func withScratchpad(_ p: Primitive, bias: dnnl_memory_desc_t?) -> Primitive {
        var p = p
        if let bias { p.descriptors[DNNL_ARG_BIAS] = bias }
        var md = scratchpadDescriptor
        p.scratchpadBytes = dnnl_memory_desc_get_size(&md)
        if p.scratchpadBytes > 0 { p.descriptors[DNNL_ARG_SCRATCHPAD] = md }
        return p
    }

    private func withAttributes<R>(alpha: Float, accumulate: Bool, geluTanh: Bool = false,
                                   _ body: (dnnl_primitive_attr_t) throws(BackendError) -> R) throws(BackendError) -> R {
        var attr: dnnl_primitive_attr_t?
        try check(dnnl_primitive_attr_create(&attr), "create attributes")
        defer { dnnl_primitive_attr_destroy(attr) }
        // Our own scratchpad per execution: Debian's oneDNN shares one library scratchpad between primitives
        // (no DNNL_ENABLE_CONCURRENT_EXEC), which breaks when two engines run products at the same time.
        try check(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "set the scratchpad mode")
        if alpha != 1 {
            var scale = alpha
            try check(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &scale), "set output scale")
        }
        if accumulate || geluTanh {
            var postOps: dnnl_post_ops_t?
            try check(dnnl_post_ops_create(&postOps), "create post-ops")
            defer { dnnl_post_ops_destroy(postOps) }
            if accumulate { try check(dnnl_post_ops_append_sum(postOps, 1), "append sum post-op") }
            if geluTanh { try check(dnnl_post_ops_append_eltwise(postOps, 1, dnnl_eltwise_gelu_tanh, 0, 0), "append GELU post-op") }
            try check(dnnl_primitive_attr_set_post_ops(attr, postOps), "set post-ops")
        }
        return try body(attr!)
    }

    private func create<Desc>(_ desc: inout Desc, _ attr: dnnl_primitive_attr_t, _ what: String) throws(BackendError) -> dnnl_primitive_t {
        var pd: dnnl_primitive_desc_t?
        let status = withUnsafePointer(to: &desc) { dnnl_primitive_desc_create(&pd, UnsafeRawPointer($0), attr, engine, nil) }
        try check(status, "find an implementation for \(what)")
        defer { dnnl_primitive_desc_destroy(pd) }
        var primitive: dnnl_primitive_t?
        try check(dnnl_primitive_create(&primitive, pd), "create \(what)")
        scratchpadDescriptor = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0).pointee
        return primitive!
    }
}

/// The cache key of a matmul whose weights are in a packed layout.
private struct PackedKey: Hashable {
    let descriptor: GemmDescriptor
    let layout: [UInt8]
}

public struct BackendError: Error, CustomStringConvertible {
    public let description: String
}

private func check(_ status: dnnl_status_t, _ what: String) throws(BackendError) {
    guard status == dnnl_success else { throw BackendError(description: "oneDNN could not \(what) (status \(status.rawValue))") }
}
