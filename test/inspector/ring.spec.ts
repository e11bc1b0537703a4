import { expect } from 'chai';
import { Ring } from '../../src/inspector/ring.js';

describe('inspector/ring', () => {
  it('is first in, first out across growth and wrap-around, with access by position', () => {
    const ring = new Ring<number>();
    const model: number[] = [];
    let next = 0;
    for (let step = 0; step < 500; step++) {
      if (step % 3 === 2) expect(ring.shift()).to.equal(model.shift());
      else {
        ring.push(next);
        model.push(next++);
      }
      expect(ring.length).to.equal(model.length);
      expect(ring.at(0)).to.equal(model[0]);
      expect(ring.at(model.length - 1)).to.equal(model[model.length - 1]);
    }
    expect(ring.at(-1)).to.equal(undefined);
    expect(ring.at(model.length)).to.equal(undefined);
    ring.clear();
    expect(ring.length).to.equal(0);
    expect(ring.shift()).to.equal(undefined);
  });
});
