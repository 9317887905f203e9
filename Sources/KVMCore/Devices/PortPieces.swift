/// One port access cut up as QEMU's memory core cuts it (access_with_adjusted_size
/// and memory_access_size): the access walks its ports from the first; each
/// piece is as long as the region holding its first port allows — at most the
/// region's largest valid access, no more than the offset's alignment, a power
/// of two, never past the access's end — and a port no region holds is one
/// byte that reads all ones and takes no write. Devices that QEMU's oracle
/// compares byte for byte (pc-testdev, the PCI host bridge) answer through this,
/// so every size and alignment gives what QEMU gives.
enum PortPieces {
    /// A device's port region: its first port and its largest valid access.
    struct Region: Equatable {
        let base: UInt16
        let maxAccess: Int
    }

    /// One piece: where it starts in the access (bytes), its length, the region
    /// that holds it (nil: an unassigned byte) and its offset in that region.
    struct Piece {
        let start: Int
        let length: Int
        let region: Region?
        let offset: Int

        /// The piece's bits of `value`, an access's whole value.
        func bits(of value: UInt32) -> UInt32 { value >> (8 * start) & PortPieces.mask(length) }
    }

    /// Calls `body` for each piece of an access of `size` bytes at `port`,
    /// while it returns true.
    static func walk(port: UInt16, size: Int, regions: (UInt16) -> Region?, _ body: (Piece) -> Bool) {
        var done = 0
        while done < size {
            let p = port &+ UInt16(done)
            guard let region = regions(p) else {
                guard body(Piece(start: done, length: 1, region: nil, offset: 0)) else { return }
                done += 1
                continue
            }
            let offset = Int(p &- region.base)
            let length = pieceLength(offset: offset, remaining: size - done, maxAccess: region.maxAccess)
            guard body(Piece(start: done, length: length, region: region, offset: offset)) else { return }
            done += length
        }
    }

    /// Reads an access piece by piece: `read` gives each piece's value (an
    /// unassigned byte reads 0xff).
    static func read(port: UInt16, size: Int, regions: (UInt16) -> Region?, _ read: (Piece) -> UInt32) -> UInt32 {
        var value: UInt32 = 0
        walk(port: port, size: size, regions: regions) { piece in
            value |= (piece.region == nil ? 0xFF : read(piece) & mask(piece.length)) << (8 * piece.start)
            return true
        }
        return value
    }

    /// The length of the next piece of an access of `remaining` bytes at
    /// `offset` into a region whose largest valid access is `maxAccess`.
    static func pieceLength(offset: Int, remaining: Int, maxAccess: Int) -> Int {
        var limit = maxAccess
        if offset != 0 { limit = min(limit, offset & -offset) }
        var l = min(remaining, limit)
        while l & (l - 1) != 0 { l &= l - 1 }
        return l
    }

    /// The low `length` bytes.
    static func mask(_ length: Int) -> UInt32 { length >= 4 ? ~0 : (1 << (8 * length)) - 1 }
}
