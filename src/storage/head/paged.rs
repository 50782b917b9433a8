//! Append-only containers that grow in fixed pages instead of doubling, so a structure holding
//! millions of small records never carries the up-to-50 % spare capacity of a doubled `Vec`,
//! and growing never copies what is already stored.
//!
//! Invariants:
//! * [`PagedVec`]: every page but the last is full ([`PAGE_ITEMS`] items); item `i` lives in
//!   page `i / PAGE_ITEMS` at `i % PAGE_ITEMS`.
//! * [`Arena`]: a byte range handed out by [`Arena::push`] never moves and is never split
//!   across pages: its address is a logical offset, page `addr / ARENA_PAGE` holds it from
//!   `addr % ARENA_PAGE`. A range larger than a page gets one allocation of its own at the
//!   start of a fresh page and the logical pages it covers stay empty.

/// Items per [`PagedVec`] page.
pub(super) const PAGE_ITEMS: usize = 1024;
/// Bytes per [`Arena`] page.
pub(super) const ARENA_PAGE: usize = 64 * 1024;

/// A `Vec` of pages of [`PAGE_ITEMS`] items.
#[derive(Debug)]
pub(super) struct PagedVec<T> {
    pages: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for PagedVec<T> {
    fn default() -> Self {
        Self { pages: Vec::new(), len: 0 }
    }
}

impl<T> PagedVec<T> {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Appends `item` and returns its index.
    pub(super) fn push(&mut self, item: T) -> usize {
        if self.len % PAGE_ITEMS == 0 {
            self.pages.push(Vec::with_capacity(PAGE_ITEMS));
        }
        let page = self.pages.last_mut().expect("a page was just ensured");
        debug_assert!(page.len() < PAGE_ITEMS);
        page.push(item);
        self.len += 1;
        self.len - 1
    }

    pub(super) fn get(&self, index: usize) -> &T {
        &self.pages[index / PAGE_ITEMS][index % PAGE_ITEMS]
    }

    pub(super) fn get_mut(&mut self, index: usize) -> &mut T {
        &mut self.pages[index / PAGE_ITEMS][index % PAGE_ITEMS]
    }
}

/// Byte storage addressed by `u32` logical offsets (4 GiB in all).
#[derive(Debug, Default)]
pub(super) struct Arena {
    pages: Vec<Box<[u8]>>,
    /// Bytes used in the last page.
    used: usize,
}

impl Arena {
    /// Copies `bytes` in and returns their address.
    ///
    /// # Panics
    /// When the arena would pass 4 GiB of logical space.
    pub(super) fn push(&mut self, bytes: &[u8]) -> u32 {
        if bytes.len() > ARENA_PAGE {
            let page = self.pages.len();
            self.pages.push(bytes.into());
            // Pad with empty pages so the logical space the range covers stays its own.
            let covered = bytes.len().div_ceil(ARENA_PAGE);
            for _ in 1..covered {
                self.pages.push(Box::default());
            }
            self.used = ARENA_PAGE;
            return address(page, 0);
        }
        if self.pages.is_empty() || self.used + bytes.len() > ARENA_PAGE {
            self.pages.push(vec![0; ARENA_PAGE].into_boxed_slice());
            self.used = 0;
        }
        let page = self.pages.len() - 1;
        let start = self.used;
        self.pages[page][start..start + bytes.len()].copy_from_slice(bytes);
        self.used += bytes.len();
        address(page, start)
    }

    /// The bytes from `addr` to the end of its page; the caller knows where its range ends.
    pub(super) fn get(&self, addr: u32) -> &[u8] {
        let addr = addr as usize;
        &self.pages[addr / ARENA_PAGE][addr % ARENA_PAGE..]
    }
}

fn address(page: usize, offset: usize) -> u32 {
    let logical = page * ARENA_PAGE + offset;
    u32::try_from(logical).expect("label arena over 4 GiB")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paged_vec_indexes_across_pages() {
        let mut vec = PagedVec::default();
        for i in 0..3 * PAGE_ITEMS + 5 {
            assert_eq!(vec.push(i), i);
        }
        assert_eq!(vec.len(), 3 * PAGE_ITEMS + 5);
        assert_eq!(*vec.get(PAGE_ITEMS + 7), PAGE_ITEMS + 7);
        *vec.get_mut(2) = 99;
        assert_eq!(*vec.get(2), 99);
    }

    #[test]
    fn arena_keeps_ranges_whole_and_oversized_ranges_alone() {
        let mut arena = Arena::default();
        let small = arena.push(b"abc");
        let filler = vec![7u8; ARENA_PAGE - 2];
        let second = arena.push(&filler);
        let big = vec![9u8; ARENA_PAGE * 2 + 1];
        let big_addr = arena.push(&big);
        let after = arena.push(b"xyz");
        assert_eq!(&arena.get(small)[..3], b"abc");
        assert_eq!(second as usize, ARENA_PAGE, "did not fit behind abc, so a new page");
        assert_eq!(&arena.get(second)[..filler.len()], &filler[..]);
        assert_eq!(arena.get(big_addr), &big[..]);
        assert_eq!(&arena.get(after)[..3], b"xyz");
        assert!(after as usize >= big_addr as usize + big.len());
    }
}
