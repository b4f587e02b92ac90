//! Memory-mapped V4L2 buffers (`V4L2_MEMORY_MMAP`): [`MappedPlane`] owns one
//! `mmap(2)` of one plane and unmaps it when dropped; [`MappedBuffer`] is the planes
//! of one buffer. Access is through bounds-checked slices.
//!
//! The driver writes into a capture buffer while it is queued and reads an output
//! buffer while it is queued: read a capture buffer only after `VIDIOC_DQBUF`
//! returned it, and fill an output buffer only before `VIDIOC_QBUF`. The
//! [`super::Node`] trait's callers keep to that.

use std::io;
use std::ops::Range;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;

/// One `mmap(2)`ed plane, shared with the driver (`PROT_READ | PROT_WRITE`,
/// `MAP_SHARED`). Unmapped on drop.
#[derive(Debug)]
pub struct MappedPlane {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is owned by this value alone (nothing else holds its
// address), and reads and writes go through `&self` / `&mut self`, so moving it to
// another thread, or sharing `&MappedPlane` (read-only slices) between threads, is
// as safe as for a `Vec<u8>`.
unsafe impl Send for MappedPlane {}
// SAFETY: see above; `&MappedPlane` only gives out `&[u8]`.
unsafe impl Sync for MappedPlane {}

impl MappedPlane {
    /// Maps `len` bytes of `fd` at `offset` (for a V4L2 buffer: `m.offset` or
    /// `m.mem_offset` from `VIDIOC_QUERYBUF`, a multiple of the page size).
    pub fn map(fd: BorrowedFd<'_>, offset: u64, len: usize) -> io::Result<MappedPlane> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot map a plane of length 0",
            ));
        }
        let offset = libc::off_t::try_from(offset).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("mmap offset {offset:#x} does not fit off_t"),
            )
        })?;
        // SAFETY: a new mapping at an address the kernel chooses (null hint), so no
        // existing memory is affected; the fd is open for the whole call.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        match NonNull::new(ptr.cast::<u8>()) {
            Some(ptr) => Ok(MappedPlane { ptr, len }),
            None => Err(io::Error::other("mmap returned a null address")),
        }
    }

    /// The plane's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the plane is empty (never: empty planes are not mapped).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The whole plane.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` is a live mapping of `len` readable bytes until drop, and
        // the returned borrow ends before then.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The whole plane, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes this the only borrow.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// `range` of the plane, `None` when it does not fit.
    pub fn get(&self, range: Range<usize>) -> Option<&[u8]> {
        self.as_slice().get(range)
    }

    /// `range` of the plane, writable; `None` when it does not fit.
    pub fn get_mut(&mut self, range: Range<usize>) -> Option<&mut [u8]> {
        self.as_mut_slice().get_mut(range)
    }
}

impl Drop for MappedPlane {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned and nothing borrows
        // the memory any more (we are being dropped). A failure leaves nothing to do.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// The mapped planes of one buffer (one for single-planar queues).
#[derive(Debug, Default)]
pub struct MappedBuffer {
    planes: Vec<MappedPlane>,
}

impl MappedBuffer {
    /// A buffer of these planes.
    pub fn new(planes: Vec<MappedPlane>) -> Self {
        MappedBuffer { planes }
    }

    /// How many planes it has.
    pub fn plane_count(&self) -> usize {
        self.planes.len()
    }

    /// Plane `index`.
    pub fn plane(&self, index: usize) -> Option<&MappedPlane> {
        self.planes.get(index)
    }

    /// Plane `index`, writable.
    pub fn plane_mut(&mut self, index: usize) -> Option<&mut MappedPlane> {
        self.planes.get_mut(index)
    }

    /// The memory of plane `index`.
    pub fn slice(&self, index: usize) -> Option<&[u8]> {
        self.plane(index).map(MappedPlane::as_slice)
    }

    /// The memory of plane `index`, writable.
    pub fn slice_mut(&mut self, index: usize) -> Option<&mut [u8]> {
        self.plane_mut(index).map(MappedPlane::as_mut_slice)
    }

    /// Each plane's length.
    pub fn lengths(&self) -> Vec<usize> {
        self.planes.iter().map(MappedPlane::len).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::os::fd::{AsFd, FromRawFd, OwnedFd};

    fn page() -> usize {
        // SAFETY: sysconf has no preconditions.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(size).unwrap()
    }

    #[test]
    fn a_file_is_shared_both_ways() {
        let mut file = tempfile::tempfile().unwrap();
        let page = page();
        let mut content = vec![0u8; 2 * page];
        content[page..page + 5].copy_from_slice(b"hello");
        file.write_all(&content).unwrap();

        // The second page, as a driver's second buffer would be.
        let mut plane = MappedPlane::map(file.as_fd(), page as u64, page).unwrap();
        assert_eq!(plane.len(), page);
        assert!(!plane.is_empty());
        assert_eq!(plane.get(0..5), Some(&b"hello"[..]));
        assert_eq!(plane.get(page - 1..page + 1), None);
        assert_eq!(plane.get(page..page), Some(&[][..]));

        plane.get_mut(0..5).unwrap().copy_from_slice(b"HELLO");
        plane.as_mut_slice()[page - 1] = 0xab;
        drop(plane);

        let mut back = Vec::new();
        file.seek(SeekFrom::Start(0)).unwrap();
        file.read_to_end(&mut back).unwrap();
        assert_eq!(&back[page..page + 5], b"HELLO");
        assert_eq!(back[2 * page - 1], 0xab);
        assert!(back[..page].iter().all(|&b| b == 0), "first page untouched");
    }

    #[test]
    fn a_memfd_buffer_with_two_planes() {
        let name = std::ffi::CString::new("streamer-mmap-test").unwrap();
        // SAFETY: memfd_create with a valid C string; the fd is owned below.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0, "{}", io::Error::last_os_error());
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let page = page();
        let file = std::fs::File::from(fd);
        file.set_len(3 * page as u64).unwrap();

        let luma = MappedPlane::map(file.as_fd(), 0, page).unwrap();
        let chroma = MappedPlane::map(file.as_fd(), page as u64, 2 * page).unwrap();
        let mut buffer = MappedBuffer::new(vec![luma, chroma]);
        assert_eq!(buffer.plane_count(), 2);
        assert_eq!(buffer.lengths(), vec![page, 2 * page]);
        buffer.slice_mut(1).unwrap()[0] = 7;
        assert!(buffer.slice(2).is_none());
        assert!(buffer.slice_mut(2).is_none());

        // A second mapping of the same memory sees the write.
        let again = MappedPlane::map(file.as_fd(), page as u64, page).unwrap();
        assert_eq!(again.as_slice()[0], 7);
        assert_eq!(buffer.slice(0).unwrap().len(), page);
    }

    #[test]
    fn bad_mappings_are_errors() {
        let file = tempfile::tempfile().unwrap();
        file.set_len(page() as u64).unwrap();
        let zero = MappedPlane::map(file.as_fd(), 0, 0).unwrap_err();
        assert_eq!(zero.kind(), io::ErrorKind::InvalidInput);
        // Offsets must be page-aligned.
        let unaligned = MappedPlane::map(file.as_fd(), 1, 16).unwrap_err();
        assert_eq!(unaligned.raw_os_error(), Some(libc::EINVAL));
        // A read-only descriptor cannot be mapped writable and shared.
        let path = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(path.path(), vec![0u8; page()]).unwrap();
        let read_only = std::fs::File::open(path.path()).unwrap();
        let denied = MappedPlane::map(read_only.as_fd(), 0, page()).unwrap_err();
        assert_eq!(denied.raw_os_error(), Some(libc::EACCES));
    }

    #[test]
    fn planes_can_move_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<MappedPlane>();
        assert_send_sync::<MappedBuffer>();
        let file = tempfile::tempfile().unwrap();
        file.set_len(page() as u64).unwrap();
        let mut plane = MappedPlane::map(file.as_fd(), 0, page()).unwrap();
        plane.as_mut_slice()[0] = 42;
        let seen = std::thread::spawn(move || plane.as_slice()[0])
            .join()
            .unwrap();
        assert_eq!(seen, 42);
    }
}
